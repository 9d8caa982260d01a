import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CRD_FILE } from './crd.ts';
import { renderCrd } from './generate-crd.ts';
import { corpus } from '../../../test/support/api-corpus.ts';
import { SCHEDULE_MESSAGE, TIME_ZONE_MESSAGE, singletonJobSchema, transitionRules } from './singletonjob.ts';
import { JobFieldMessages } from './job-fields.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('the SingletonJob CRD', () => {
  it('committed manifest equals the one generated from the code (run `npm run crd:generate`)', () => {
    expect(readFileSync(path.join(root, CRD_FILE), 'utf8')).toBe(renderCrd());
  });

  it('carries the fencing transition rules at the root, where dropping status cannot skip them', () => {
    const crd = parse(renderCrd());
    const rules = crd.spec.versions[0].schema.openAPIV3Schema['x-kubernetes-validations'].map(
      (r: { rule: string }) => r.rule,
    );
    expect(rules.join('\n')).toContain('self.status.currentToken >= oldSelf.status.currentToken');
    expect(rules.join('\n')).toContain('self.status.leaderTerm >= oldSelf.status.leaderTerm');
  });
});

describe('zod agrees with the corpus', () => {
  it.each(corpus.map((c) => [c.name, c] as const))('%s', (_name, entry) => {
    const result = singletonJobSchema.safeParse(entry.object);
    expect(result.success).toBe(entry.valid);
  });

  it('rejects an activeRun whose token is not the current token', () => {
    const base = corpus[0]!.object;
    const status = {
      currentToken: 5,
      activeRun: { name: 'x-1', token: 4, term: 4, kind: 'Manual', reservedTime: '2025-01-01T00:00:00Z' },
    };
    expect(singletonJobSchema.safeParse({ ...base, status }).success).toBe(false);
    expect(singletonJobSchema.safeParse({ ...base, status: { ...status, currentToken: 4 } }).success).toBe(true);
  });

  it('refuses tokens that JSON cannot carry exactly', () => {
    const base = corpus[0]!.object;
    expect(singletonJobSchema.safeParse({ ...base, status: { currentToken: 2 ** 53 } }).success).toBe(false);
  });
});

describe('messages in words', () => {
  const base = corpus[0]!.object as { spec: Record<string, unknown> };
  const issues = (spec: Record<string, unknown>) => {
    const result = singletonJobSchema.safeParse({ ...base, spec: { ...base.spec, ...spec } });
    return result.success ? [] : result.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
  };

  it('answers a schedule or time zone it cannot take with what is allowed, as the CRD rule does', () => {
    expect(issues({ schedule: '@every 5m' })).toEqual([{ path: 'spec.schedule', message: SCHEDULE_MESSAGE }]);
    expect(issues({ schedules: ['0 * * * *', '* * * *'] })).toEqual([
      { path: 'spec.schedules.1', message: SCHEDULE_MESSAGE },
    ]);
    expect(issues({ schedule: '0 0 * * *', timeZone: 'Europe Berlin' })).toEqual([
      { path: 'spec.timeZone', message: TIME_ZONE_MESSAGE },
    ]);
    for (const ok of [
      '0 0 * * *',
      '*/5 * * * * *',
      '@midnight',
      '0 9 * * MON-FRI',
      '0 0 L * *',
      '0 0 ? JAN,JUL SUN#2',
      '0\t0 * * *',
    ])
      expect({ ok, issues: issues({ schedule: ok }) }).toEqual({ ok, issues: [] });
  });

  it('refuses a Job field that hands the run to someone else, at its path, in the words of the CRD rule (docs/job-fields.md)', () => {
    const template = base.spec.jobTemplate as { spec: Record<string, unknown> };
    const job = (fields: Record<string, unknown>) => issues({ jobTemplate: { spec: { ...template.spec, ...fields } } });
    const at = (field: string, message: string) => [{ path: `spec.jobTemplate.spec.${field}`, message }];
    expect(job({ managedBy: 'kueue.x-k8s.io/multikueue' })).toEqual(at('managedBy', JobFieldMessages.managedBy));
    const rules = [
      { action: 'FailJob', onExitCodes: { operator: 'In', values: [42] } },
      { action: 'Ignore', onPodConditions: [{ type: 'DisruptionTarget' }] },
    ];
    expect(job({ podFailurePolicy: { rules } })).toEqual(
      at('podFailurePolicy.rules.1.action', JobFieldMessages.ignore),
    );
    expect(
      job({ podFailurePolicy: { rules: [{ action: 'FailIndex', onExitCodes: { operator: 'In', values: [1] } }] } }),
    ).toEqual(at('podFailurePolicy.rules.0.action', JobFieldMessages.failIndex));
    expect(job({ podReplacementPolicy: 'TerminatingOrFailed' })).toEqual(
      at('podReplacementPolicy', JobFieldMessages.podReplacementPolicy),
    );
    for (const [field, value] of [
      ['ttlSecondsAfterFinished', 0],
      ['backoffLimitPerIndex', 1],
      ['maxFailedIndexes', 1],
      ['successPolicy', { rules: [{ succeededCount: 1 }] }],
      ['selector', { matchLabels: { app: 'x' } }],
    ] as const)
      expect({ field, issues: job({ [field]: value }) }).toEqual({ field, issues: at(field, JobFieldMessages[field]) });
    // What a SingletonJob honours.
    for (const ok of [
      { managedBy: 'kubernetes.io/job-controller' },
      {
        podFailurePolicy: {
          rules: [
            { action: 'FailJob', onExitCodes: { operator: 'In', values: [42] } },
            { action: 'Count', onPodConditions: [{ type: 'DisruptionTarget' }] },
          ],
        },
      },
      { podReplacementPolicy: 'Failed', activeDeadlineSeconds: 600, backoffLimit: 3 },
    ])
      expect({ ok, issues: job(ok) }).toEqual({ ok, issues: [] });
  });

  it('gives every CEL rule of the CRD a field path or a place that names its field', () => {
    const crd = parse(renderCrd());
    const unnamed: string[] = [];
    const walk = (schema: Record<string, unknown>, at: string) => {
      for (const r of (schema['x-kubernetes-validations'] ?? []) as { rule: string; fieldPath?: string }[])
        if (at === '' && !r.fieldPath) unnamed.push(r.rule);
      for (const [k, v] of Object.entries((schema.properties ?? {}) as Record<string, Record<string, unknown>>))
        walk(v, `${at}.${k}`);
      if (schema.items) walk(schema.items as Record<string, unknown>, `${at}[]`);
    };
    walk(crd.spec.versions[0].schema.openAPIV3Schema, '');
    expect(unnamed).toEqual([]);
    const root = crd.spec.versions[0].schema.openAPIV3Schema['x-kubernetes-validations'] as { fieldPath?: string }[];
    expect(root.map((r) => r.fieldPath)).toEqual(['.status.currentToken', '.status.leaderTerm']);
  });

  it('has no OpenAPI pattern left (the API server would answer with the raw expression)', () => {
    expect(renderCrd()).not.toMatch(/^\s*pattern:/m);
  });
});

describe('the transition rules’ JS twins (what the in-memory fake of the API server enforces)', () => {
  const holds = (
    before: { currentToken?: number; leaderTerm?: number } | undefined,
    after: { currentToken?: number; leaderTerm?: number } | undefined,
  ) =>
    transitionRules
      .filter((r) => !r.check.transition(before ? { status: before } : {}, after ? { status: after } : {}))
      .map((r) => r.fieldPath);

  it('refuse a lower or removed token or term, as the CEL rules do', () => {
    expect(holds({ currentToken: 5, leaderTerm: 3 }, { currentToken: 5, leaderTerm: 3 })).toEqual([]);
    expect(holds({ currentToken: 5, leaderTerm: 3 }, { currentToken: 6, leaderTerm: 4 })).toEqual([]);
    expect(holds({ currentToken: 5, leaderTerm: 3 }, { currentToken: 4, leaderTerm: 3 })).toEqual([
      '.status.currentToken',
    ]);
    expect(holds({ currentToken: 5, leaderTerm: 3 }, { currentToken: 5 })).toEqual(['.status.leaderTerm']);
    expect(holds({ currentToken: 5, leaderTerm: 3 }, undefined)).toEqual([
      '.status.currentToken',
      '.status.leaderTerm',
    ]);
  });

  it('let a first write set them (nothing recorded before)', () => {
    expect(holds(undefined, { currentToken: 1 })).toEqual([]);
    expect(holds({}, {})).toEqual([]);
  });
});
