// The bad-input corpus: malformed SingletonJobs created while the operator
// runs. Each must be refused by the API server with a readable message (the
// CRD schema and CEL rules), or — where only the operator can tell (a cron
// expression that passes the CRD's rule but does not parse, an unknown time zone) —
// be marked Ready=False. They stay in place for the whole run, so every
// leader after a failover meets them again; the checker meanwhile judges the
// well-formed objects next to them and the crash-loop check the replicas.
import * as k8s from '@kubernetes/client-node';
import { apiMessage, statusCode } from '../../src/kube/errors.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../src/api/v1alpha1/singletonjob.ts';
import { corpus } from '../support/api-corpus.ts';
import { sleep } from '../controlplane/process.ts';
import type { BadInputResult } from './history.ts';

const jobTemplate = {
  spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } } },
};

function sj(name: string, spec: unknown, metadata: Record<string, unknown> = {}): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name, ...metadata }, spec };
}

export interface BadEntry {
  name: string;
  description: string;
  object: Record<string, unknown>;
}

/** The corpus: the API package's invalid fixtures plus the hostile cases only an end-to-end run can see. */
export function badInputCorpus(): BadEntry[] {
  const fromApi = corpus
    .filter((c) => !c.valid)
    .map((c) => ({
      name: String((c.object.metadata as { name: string }).name),
      description: c.name,
      object: c.object,
    }));
  return [
    ...fromApi,
    {
      name: 'bad-type-schedule',
      description: 'schedule is a number',
      object: sj('bad-type-schedule', { schedule: 5, jobTemplate }),
    },
    {
      name: 'bad-type-suspend',
      description: 'suspend is a string',
      object: sj('bad-type-suspend', { schedule: '* * * * *', suspend: 'yes', jobTemplate }),
    },
    {
      name: 'bad-type-template',
      description: 'jobTemplate is a string',
      object: sj('bad-type-template', { schedule: '* * * * *', jobTemplate: 'busybox' }),
    },
    {
      name: 'bad-no-spec',
      description: 'no spec at all',
      object: { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'bad-no-spec' } },
    },
    {
      name: 'bad-cron-range',
      description: 'minute 61 (passes the CRD rule, does not parse)',
      object: sj('bad-cron-range', { schedule: '61 * * * *', jobTemplate }),
    },
    {
      name: 'bad-cron-words',
      description: 'five words that are not cron fields (refused by the CRD rule)',
      object: sj('bad-cron-words', { schedule: 'every day at noon please', jobTemplate }),
    },
    {
      name: 'bad-zone-unknown',
      description: 'unknown IANA zone Mars/Olympus_Mons',
      object: sj('bad-zone-unknown', { schedule: '* * * * *', timeZone: 'Mars/Olympus_Mons', jobTemplate }),
    },
    {
      name: 'bad-oversized',
      description: '1.5 MiB container command (over the request size limits)',
      object: sj('bad-oversized', {
        schedule: '* * * * *',
        jobTemplate: {
          spec: {
            template: {
              spec: {
                restartPolicy: 'Never',
                containers: [{ name: 'main', image: 'busybox', command: ['x'.repeat(3_300_000)] }],
              },
            },
          },
        },
      }),
    },
    {
      name: 'bad-huge-annotation',
      description: '300 KiB annotation',
      object: sj(
        'bad-huge-annotation',
        { schedule: '* * * * *', jobTemplate },
        { annotations: { big: 'x'.repeat(300 * 1024) } },
      ),
    },
    {
      name: 'Bad_Upper',
      description: 'name with upper case and underscore',
      object: sj('Bad_Upper', { schedule: '* * * * *', jobTemplate }),
    },
    {
      name: `bad-${'x'.repeat(260)}`,
      description: 'name of 264 characters',
      object: sj(`bad-${'x'.repeat(260)}`, { schedule: '* * * * *', jobTemplate }),
    },
    {
      name: 'bad-..-dots',
      description: 'name with ".." (path traversal attempt)',
      object: sj('..', { schedule: '* * * * *', jobTemplate }),
    },
    {
      name: 'bad-emoji-☃',
      description: 'name with a non-ASCII character',
      object: sj('bad-emoji-☃', { schedule: '* * * * *', jobTemplate }),
    },
  ];
}

function readyCondition(obj: unknown): { status: string; reason?: string; message?: string } | undefined {
  const conditions =
    (obj as { status?: { conditions?: Array<{ type: string; status: string; reason?: string; message?: string }> } })
      .status?.conditions ?? [];
  return conditions.find((c) => c.type === 'Ready');
}

/** Creates every malformed object and waits for its verdict. */
export async function runBadInput(
  custom: k8s.CustomObjectsApi,
  namespace: string,
  log: (l: string) => void,
  waitMs = 30_000,
): Promise<BadInputResult[]> {
  const results: BadInputResult[] = [];
  const created: BadEntry[] = [];
  for (const entry of badInputCorpus()) {
    try {
      await custom.createNamespacedCustomObject({
        group: GROUP,
        version: VERSION,
        namespace,
        plural: PLURAL,
        body: entry.object,
      });
      created.push(entry);
    } catch (err) {
      const code = statusCode(err);
      const message = apiMessage(err);
      const clear = code !== undefined && code >= 400 && code < 500 && message.length > 0;
      results.push({
        name: entry.name,
        description: entry.description,
        outcome: clear ? 'rejected' : 'accepted',
        message: `HTTP ${code ?? '?'}: ${message}`,
      });
    }
  }
  const deadline = Date.now() + waitMs;
  for (const entry of created) {
    const name = String((entry.object.metadata as { name: string }).name);
    let verdict: BadInputResult | undefined;
    while (!verdict && Date.now() < deadline) {
      const obj = await custom
        .getNamespacedCustomObject({ group: GROUP, version: VERSION, namespace, plural: PLURAL, name })
        .catch(() => undefined);
      const ready = readyCondition(obj);
      if (ready?.status === 'False')
        verdict = {
          name: entry.name,
          description: entry.description,
          outcome: 'ready-false',
          message: `Ready=False ${ready.reason ?? ''}: ${ready.message ?? ''}`,
        };
      else if (ready?.status === 'True')
        verdict = {
          name: entry.name,
          description: entry.description,
          outcome: 'accepted',
          message: 'the operator marked it Ready=True',
        };
      else await sleep(500);
    }
    results.push(
      verdict ?? {
        name: entry.name,
        description: entry.description,
        outcome: 'accepted',
        message: `created, and no Ready condition after ${waitMs / 1000} s`,
      },
    );
  }
  for (const r of results)
    log(
      `  bad input ${r.name.length > 40 ? `${r.name.slice(0, 37)}…` : r.name}: ${r.outcome} — ${r.message.slice(0, 140)}`,
    );
  return results;
}

/** Names of the malformed objects that exist in the cluster (excluded from the slot checks). */
export function badInputNames(results: BadInputResult[]): Set<string> {
  return new Set(results.filter((r) => r.outcome !== 'rejected').map((r) => r.name));
}
