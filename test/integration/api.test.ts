// The SingletonJob API as the API server serves it: the committed CRD
// installs, the server and zod agree on a corpus, kubectl users get readable
// rejections, and the fencing transition rules refuse a status that goes back.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { readFileSync } from 'node:fs';
import { parseAllDocuments, stringify } from 'yaml';
import { testCluster, withNamespace } from '../support/cluster.ts';
import { Api, installCrd, kubectl, kubectlResult, singletonJob } from '../support/singletonjobs.ts';
import { eventually } from '../support/cluster.ts';
import { corpus, NOT_CHECKED } from '../support/api-corpus.ts';
import { singletonJobSchema } from '../../src/api/v1alpha1/singletonjob.ts';
import { statusCode, apiMessage } from '../../src/kube/errors.ts';

const cluster = testCluster();
const kc = cluster.kubeConfig();
let ns: { name: string; cleanup: () => Promise<void> };
let api: Api;

beforeAll(async () => {
  await installCrd(cluster.kubeconfig);
  ns = await withNamespace(kc, 'api');
  api = new Api(kc, ns.name);
});
afterAll(async () => {
  await ns.cleanup();
});

describe('the SingletonJob CRD', () => {
  it('agrees with zod on every corpus entry, and kubectl shows the reason of each rejection', () => {
    for (const entry of corpus) {
      const result = kubectlResult(
        cluster.kubeconfig,
        ['apply', '-n', ns.name, '--dry-run=server', '-f', '-'],
        stringify(entry.object),
      );
      expect({ name: entry.name, server: result.ok }).toEqual({ name: entry.name, server: entry.valid });
      expect({ name: entry.name, zod: singletonJobSchema.safeParse(entry.object).success }).toEqual({
        name: entry.name,
        zod: entry.valid,
      });
      if (!entry.valid) expect(result.out).toContain(entry.message);
    }
  });

  it('answers each invalid corpus entry with exactly the message in the corpus: the field named, what is allowed said in words', () => {
    for (const entry of corpus.filter((e) => !e.valid)) {
      const result = kubectlResult(
        cluster.kubeconfig,
        ['create', '-n', ns.name, '--dry-run=server', '-f', '-'],
        stringify(entry.object),
      );
      expect({ name: entry.name, out: result.out.trim() }).toEqual({ name: entry.name, out: entry.expected });
      // No raw regular expressions; no rule of ours without a field ("<nil>"), only the server's own closing note.
      expect(entry.expected).not.toMatch(/should match/);
      expect(entry.expected!.replace(NOT_CHECKED, '')).not.toContain('<nil>');
    }
  });

  it('rejects invalid YAML applied with kubectl with a message a person can act on', () => {
    const yaml = (policy: string, parallelism: number) => `apiVersion: singleton.dev/v1alpha1
kind: SingletonJob
metadata:
  name: payroll
spec:
  schedule: "0 0 * * *"
  concurrencyPolicy: ${policy}
  jobTemplate:
    spec:
      parallelism: ${parallelism}
      template:
        spec:
          restartPolicy: Never
          containers: [{ name: main, image: busybox }]
`;
    const badEnum = kubectlResult(cluster.kubeconfig, ['apply', '-n', ns.name, '-f', '-'], yaml('Sometimes', 1));
    expect(badEnum.ok).toBe(false);
    expect(badEnum.out).toContain(
      'spec.concurrencyPolicy: Unsupported value: "Sometimes": supported values: "Forbid", "Queue", "Replace"',
    );
    // CEL rules run once the schema errors are fixed.
    const badRule = kubectlResult(cluster.kubeconfig, ['apply', '-n', ns.name, '-f', '-'], yaml('Forbid', 3));
    expect(badRule.ok).toBe(false);
    expect(badRule.out).toContain('spec.jobTemplate.spec.parallelism: Invalid value');
    expect(badRule.out).toContain('parallelism must be 1: a SingletonJob runs one Pod at a time');
  });

  it('is listed by kubectl with its short name and printer columns', () => {
    kubectl(
      cluster.kubeconfig,
      ['apply', '-n', ns.name, '-f', '-'],
      stringify(singletonJob('columns', { schedule: '*/5 * * * *' })),
    );
    const out = kubectl(cluster.kubeconfig, ['get', 'sj', '-n', ns.name]);
    expect(out.split('\n')[0]).toMatch(
      /NAME\s+SCHEDULE\s+TIME ZONE\s+SUSPEND\s+READY\s+ACTIVE\s+TOKEN\s+LAST RUN\s+NEXT RUN\s+LAST SUCCESS\s+AGE/,
    );
    expect(out).toContain('*/5 * * * *');
  });
});

describe('fencing transition rules', () => {
  it('refuse a status write that lowers or removes the token or the leader term', async () => {
    await api.create(singletonJob('fenced', {}));
    const current = await api.get('fenced');
    const written = await api.replaceStatus({ ...current, status: { currentToken: 100, leaderTerm: 90 } });
    expect(written.status?.currentToken).toBe(100);

    // Each refusal names its field (the rules carry a fieldPath), not "<nil>".
    const token =
      'status.currentToken: Invalid value: status.currentToken may not decrease or be removed (fencing: a newer leader has written)';
    const term =
      'status.leaderTerm: Invalid value: status.leaderTerm may not decrease or be removed (fencing: a newer leader has written)';
    const attempts = [
      { status: { currentToken: 99, leaderTerm: 90 }, message: token },
      { status: { currentToken: 101, leaderTerm: 89 }, message: term },
      { status: { leaderTerm: 95 }, message: token },
      { status: {}, message: `[${token}, ${term}]` },
    ];
    for (const attempt of attempts) {
      const err = await api.replaceStatus({ ...written, status: attempt.status } as typeof written).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect({ status: attempt.status, code: statusCode(err) }).toEqual({ status: attempt.status, code: 422 });
      expect({ status: attempt.status, message: apiMessage(err) }).toEqual({
        status: attempt.status,
        message: `SingletonJob.singleton.dev "fenced" is invalid: ${attempt.message}`,
      });
    }
    const higher = await api.replaceStatus({ ...written, status: { currentToken: 101, leaderTerm: 90 } });
    expect(higher.status?.currentToken).toBe(101);
  });

  it('refuses a stale write: the resourceVersion precondition is enforced on status', async () => {
    await api.create(singletonJob('cas', {}));
    const base = await api.get('cas');
    await api.replaceStatus({ ...base, status: { currentToken: 5, leaderTerm: 5 } });
    const err = await api.replaceStatus({ ...base, status: { currentToken: 6, leaderTerm: 5 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(statusCode(err)).toBe(409);
  });

  it('refuses a token that JSON cannot carry exactly', async () => {
    await api.create(singletonJob('big', {}));
    const base = await api.get('big');
    const err = await api.replaceStatus({ ...base, status: { currentToken: 2 ** 53 } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(statusCode(err)).toBe(422);
  });
});

describe('aggregated ClusterRoles', () => {
  it('let the built-in edit role manage SingletonJobs and view read them', async () => {
    // The committed roles under names of this test's own: the real names are
    // cluster-wide and belong to helm.test.ts's release (helm refuses to adopt
    // objects it did not create), and the two files may run at the same time.
    const file = path.resolve(
      path.dirname(fileURLToPath(import.meta.url)),
      '../../manifests/rbac-aggregated-clusterroles.yaml',
    );
    const roles = parseAllDocuments(readFileSync(file, 'utf8')).map((d) => d.toJS() as { metadata: { name: string } });
    expect(roles.map((r) => r.metadata.name)).toEqual([
      'singleton-operator:aggregate-to-edit',
      'singleton-operator:aggregate-to-view',
    ]);
    for (const r of roles) r.metadata.name = r.metadata.name.replace('singleton-operator:', `${ns.name}:`);
    const manifest = roles.map((r) => stringify(r)).join('---\n');
    kubectl(cluster.kubeconfig, ['apply', '-f', '-'], manifest);
    try {
      await checkAggregation();
    } finally {
      kubectl(cluster.kubeconfig, ['delete', '--ignore-not-found', '-f', '-'], manifest);
    }
  });

  async function checkAggregation(): Promise<void> {
    for (const [user, role] of [
      ['sj-editor', 'edit'],
      ['sj-viewer', 'view'],
    ] as const) {
      kubectl(cluster.kubeconfig, [
        'create',
        'rolebinding',
        user,
        `--clusterrole=${role}`,
        `--user=${user}`,
        '-n',
        ns.name,
      ]);
    }
    const can = (user: string, verb: string, ...extra: string[]) =>
      kubectlResult(cluster.kubeconfig, [
        'auth',
        'can-i',
        verb,
        'singletonjobs.singleton.dev',
        '-n',
        ns.name,
        '--as',
        user,
        ...extra,
      ]).out.trim();
    // The aggregation controller fills the built-in roles asynchronously.
    await eventually(
      'edit to cover SingletonJobs',
      async () => can('sj-editor', 'create') === 'yes' && can('sj-viewer', 'list') === 'yes',
    );
    expect(can('sj-editor', 'patch')).toBe('yes');
    expect(can('sj-editor', 'update', '--subresource=status')).toBe('no');
    expect(can('sj-viewer', 'watch')).toBe('yes');
    expect(can('sj-viewer', 'create')).toBe('no');
  }
});
