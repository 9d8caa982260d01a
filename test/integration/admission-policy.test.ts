// The chart's admission policy (issue 25 item 2; issue 21 item 1c) against the
// real API server: rendered from charts/singleton-operator with
// watchNamespaces set to this file's namespaces (the bindings then affect
// nothing else on the shared control plane — other test files write status as
// admin), applied (policies and bindings only), and exercised as a person with
// the built-in `edit` role, as cluster-admin, as the operator's ServiceAccount
// under the chart's RBAC, and through the Job controller and the garbage
// collector, which must keep working on runs' Jobs and Pods.
import { execFileSync } from 'node:child_process';
import * as k8s from '@kubernetes/client-node';
import YAML from 'yaml';
import { resolveHelm } from '../controlplane/binaries.ts';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { chartDir } from '../../scripts/generate-manifests.ts';
import { eventually, testCluster, withNamespace } from '../support/cluster.ts';
import { helm, kubectl } from '../dev/replicas.ts';
import {
  OPERATOR_NAMESPACE,
  installedKubeConfig,
  releaseFor,
  renderChart,
  serviceAccountKubeConfig,
} from '../support/installed.ts';
import {
  Api,
  fakeLeadership,
  installCrd,
  isComplete,
  requestRun,
  singletonJob,
  startController,
  type RunningController,
} from '../support/singletonjobs.ts';
import {
  GROUP,
  Keys,
  PLURAL,
  VERSION,
  type ActiveRun,
  type SingletonJob,
} from '../../src/api/v1alpha1/singletonjob.ts';
import { buildJob } from '../../src/controller/rules/jobs.ts';

const cluster = testCluster();
const kc = cluster.kubeConfig();
/** Unique per run: the policies and bindings are cluster-scoped and named after the release. */
const release = `so-vap-${Date.now().toString(36)}`;
const fullname = `${release}-singleton-operator`;
/** The ServiceAccount the test harness runs the operator as (test/support/installed.ts); the chart renders the policy for it. */
const operatorSa = releaseFor('namespaced');
const operatorUser = `system:serviceaccount:${OPERATOR_NAMESPACE}:${operatorSa}`;
/** Kueue's controller manager (kueue.enabled): it may unsuspend only a run's Job the operator handed to Kueue. */
const kueueUser = 'system:serviceaccount:kueue-system:kueue-controller-manager';
const POLICY_KINDS = new Set(['ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding']);

function servesAdmissionPolicies(): string | undefined {
  try {
    const names = execFileSync(
      'kubectl',
      ['--kubeconfig', cluster.kubeconfig, 'api-resources', '--api-group=admissionregistration.k8s.io', '-o', 'name'],
      { encoding: 'utf8' },
    );
    return names.split('\n').includes('validatingadmissionpolicies.admissionregistration.k8s.io')
      ? undefined
      : 'the API server does not serve admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy';
  } catch (err) {
    return `cannot read the API server's discovery: ${String(err)}`;
  }
}
const unavailable = servesAdmissionPolicies();
if (unavailable) console.warn(`skipping the admission policy tests: ${unavailable}`);
const describeVap = unavailable ? describe.skip : describe;

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string> };
  spec: Record<string, unknown>;
}

const renderRaw = (...set: string[]): Manifest[] => renderChart<Manifest>(release, set);
/** With the policies switched on (the default; said again so that a changed default fails here); a later `--set` wins. */
const render = (...set: string[]): Manifest[] => renderRaw('admissionPolicy.enabled=true', ...set);

/** A person: a client certificate on the local control plane, else impersonation with the admin's credentials. */
function userKubeConfig(user: string): k8s.KubeConfig {
  const kcUser = new k8s.KubeConfig();
  if (cluster.local) {
    kcUser.loadFromFile(cluster.local.kubeconfigFor(user));
    return kcUser;
  }
  const admin = cluster.kubeConfig();
  kcUser.loadFromOptions({
    clusters: admin.clusters,
    users: [{ ...admin.getCurrentUser()!, name: user, impersonateUser: user }],
    contexts: [{ name: user, cluster: admin.getCurrentCluster()!.name, user }],
    currentContext: user,
  });
  return kcUser;
}

/** The API server's answer to a write expected to fail: its HTTP code and message. */
async function refusal(write: Promise<unknown>): Promise<{ code: number; message: string }> {
  try {
    await write;
  } catch (err) {
    const e = err as { code?: number; body?: unknown };
    const body =
      typeof e.body === 'string'
        ? (JSON.parse(e.body) as { message?: string })
        : (e.body as { message?: string } | undefined);
    return { code: e.code ?? 0, message: body?.message ?? String(err) };
  }
  throw new Error('the write was allowed');
}

const merge = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch);
const jsonPatch = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.JsonPatch);
/** JSON-pointer escape of a map key. */
const ptr = (key: string) => key.replace(/~/g, '~0').replace(/\//g, '~1');

/** A client for one identity in one namespace. */
class As {
  readonly batch: k8s.BatchV1Api;
  readonly core: k8s.CoreV1Api;
  readonly custom: k8s.CustomObjectsApi;
  readonly ns: string;
  constructor(config: k8s.KubeConfig, ns: string) {
    this.ns = ns;
    this.batch = config.makeApiClient(k8s.BatchV1Api);
    this.core = config.makeApiClient(k8s.CoreV1Api);
    this.custom = config.makeApiClient(k8s.CustomObjectsApi);
  }
  createJob(body: k8s.V1Job, dryRun?: string) {
    return this.batch.createNamespacedJob({ namespace: this.ns, body, dryRun });
  }
  patchJob(name: string, body: unknown, options = merge) {
    return this.batch.patchNamespacedJob({ namespace: this.ns, name, body }, options);
  }
  patchPod(name: string, body: unknown, dryRun?: string) {
    return this.core.patchNamespacedPod({ namespace: this.ns, name, body, dryRun }, merge);
  }
  patchStatus(name: string, body: unknown, dryRun?: string) {
    return this.custom.patchNamespacedCustomObjectStatus(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: this.ns, name, body, dryRun },
      merge,
    );
  }
  patchSingletonJob(name: string, body: unknown) {
    return this.custom.patchNamespacedCustomObject(
      { group: GROUP, version: VERSION, plural: PLURAL, namespace: this.ns, name, body },
      merge,
    );
  }
}

describeVap('the chart’s admission policy', () => {
  let ns: { name: string; cleanup: () => Promise<void> };
  /** For the running operator (its own namespace, so its reconciles never meet the hand-made runs of `ns`). */
  let opNs: { name: string; cleanup: () => Promise<void> };
  let admin: As;
  let jane: As;
  let operator: As;
  let sj: SingletonJob;
  let running: RunningController | undefined;
  const jobs = new Map<string, k8s.V1Job>();
  const inFlight = { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '300s' } };

  /** A run's Job exactly as the operator builds it, created suspended by the operator's ServiceAccount. */
  async function operatorCreatesRun(name: string, token: number, template: SingletonJob = sj): Promise<k8s.V1Job> {
    const run: ActiveRun = {
      name,
      token,
      term: token,
      kind: 'Manual',
      requestId: name,
      reservedTime: new Date().toISOString(),
    };
    const job = await operator.createJob(buildJob(template, run, { suspended: true }));
    jobs.set(name, job);
    return job;
  }
  const podsOf = async (job: string) =>
    (await admin.core.listNamespacedPod({ namespace: ns.name, labelSelector: `${Keys.run}=${job}` })).items;

  beforeAll(async () => {
    await installCrd(cluster.kubeconfig);
    ns = await withNamespace(kc, 'vap');
    opNs = await withNamespace(kc, 'vap-op');
    const policy = render(
      `serviceAccount.name=${operatorSa}`,
      `watchNamespaces={${ns.name},${opNs.name}}`,
      'kueue.enabled=true',
      `kueue.serviceAccount=${kueueUser}`,
    ).filter((m) => POLICY_KINDS.has(m.kind));
    expect(policy.map((m) => `${m.kind}/${m.metadata.name}`).sort()).toEqual(
      ['run-jobs', 'run-pods', 'status']
        .flatMap((p) => [
          `ValidatingAdmissionPolicy/${fullname}-${p}`,
          `ValidatingAdmissionPolicyBinding/${fullname}-${p}`,
        ])
        .sort(),
    );
    // Applied by hand, not by Helm: without the label by which a chart install finds another release's
    // bindings, so that helm.test.ts's cluster-wide installs on this control plane do not meet them as an
    // installation whose policies would refuse theirs (the two-installation check, tested below).
    for (const m of policy) delete m.metadata.labels?.['singleton.dev/admission-policy'];
    kubectl(cluster.kubeconfig, ['apply', '-f', '-'], policy.map((m) => YAML.stringify(m)).join('---\n'));

    admin = new As(kc, ns.name);
    jane = new As(userKubeConfig('vap-jane'), ns.name);
    operator = new As(await installedKubeConfig(kc, cluster.kubeconfig, 'namespaced', [ns.name]), ns.name);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'jane-edit' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
        subjects: [{ kind: 'User', name: 'vap-jane', apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    // RBAC answers before admission: jane gets what a namespace owner with a
    // wildcard Role has on SingletonJobs, status included, so that the policy
    // (not RBAC) is what refuses her status writes.
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: 'singletonjobs-all' },
        rules: [{ apiGroups: [GROUP], resources: [PLURAL, `${PLURAL}/status`], verbs: ['*'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'jane-singletonjobs' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'singletonjobs-all' },
        subjects: [{ kind: 'User', name: 'vap-jane', apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    sj = (await new Api(kc, ns.name).create(singletonJob('nightly', { suspend: true }, inFlight))) as SingletonJob;
    // A bare Pod that looks like a run's (Pod creates are not matched), to probe the Pod policy.
    await admin.core.createNamespacedPod({
      namespace: ns.name,
      body: {
        metadata: { name: 'probe', labels: { [Keys.run]: 'probe', 'controller-uid': 'x' } },
        spec: { containers: [{ name: 'main', image: 'busybox' }] },
      },
    });

    // A policy takes a moment to take effect: wait until a server-side dry run of each kind is refused.
    const probeJob = buildJob(sj, {
      name: 'probe',
      token: 1,
      term: 1,
      kind: 'Manual',
      reservedTime: new Date().toISOString(),
    });
    const probes: [string, () => Promise<unknown>][] = [
      [`${fullname}-run-jobs`, () => jane.createJob(probeJob, 'All')],
      [
        `${fullname}-run-pods`,
        () => jane.patchPod('probe', { metadata: { labels: { 'controller-uid': 'y' } } }, 'All'),
      ],
      [`${fullname}-status`, () => jane.patchStatus('nightly', { status: { observedGeneration: 1 } }, 'All')],
    ];
    for (const [name, probe] of probes) {
      await eventually(
        `policy ${name} in effect`,
        async () => {
          try {
            await probe();
            return false;
          } catch (err) {
            const r = await refusal(Promise.reject(err));
            if (r.code === 403 && r.message.includes(`ValidatingAdmissionPolicy '${name}'`)) return true;
            throw new Error(`unexpected refusal: ${r.code} ${r.message}`);
          }
        },
        30_000,
      );
    }
  }, 120_000);

  afterAll(async () => {
    await running?.stop();
    try {
      kubectl(cluster.kubeconfig, [
        'delete',
        'validatingadmissionpolicybindings,validatingadmissionpolicies',
        '-l',
        `app.kubernetes.io/instance=${release}`,
        '--ignore-not-found',
      ]);
    } finally {
      await ns?.cleanup();
      await opNs?.cleanup();
    }
  });

  it('renders three policies and bindings per release (on by default, off with admissionPolicy.enabled=false) whose expressions type-check cleanly against the Job and Pod schemas', async () => {
    // Defaults: every namespace, the release's own ServiceAccount (the Deployment's), Deny.
    const defaults = renderRaw();
    const sa = (
      defaults.find((m) => m.kind === 'Deployment')!.spec as { template: { spec: { serviceAccountName: string } } }
    ).template.spec.serviceAccountName;
    const policies = defaults.filter((m) => m.kind === 'ValidatingAdmissionPolicy');
    expect(policies).toHaveLength(3);
    for (const p of policies) expect(p.spec.failurePolicy).toBe('Fail');
    const self = `system:serviceaccount:${OPERATOR_NAMESPACE}:${sa}`;
    expect(JSON.stringify(policies)).toContain(`!(request.userInfo.username in ['${self}'])`);
    for (const b of defaults.filter((m) => m.kind === 'ValidatingAdmissionPolicyBinding')) {
      expect(b.spec).toEqual({
        policyName: b.metadata.name,
        validationActions: ['Deny'],
        matchResources: { namespaceSelector: {} },
      });
      expect((b.metadata as { annotations?: Record<string, string> }).annotations).toEqual({
        'singleton.dev/operator': self,
        'singleton.dev/admits': self,
      });
    }
    expect(renderRaw('admissionPolicy.enabled=false').filter((m) => POLICY_KINDS.has(m.kind))).toEqual([]);
    // Another installation's ServiceAccount, admitted like this release's; anything else named there is refused.
    const other = 'system:serviceaccount:team-b:singleton-operator';
    const trusting = render(`admissionPolicy.trustedOperators={${other}}`).filter(
      (m) => m.kind === 'ValidatingAdmissionPolicy',
    );
    expect(JSON.stringify(trusting)).toContain(`!(request.userInfo.username in ['${self}','${other}'])`);
    expect(() => render('admissionPolicy.trustedOperators={team-b/singleton-operator}')).toThrow(/trustedOperators/);
    // A trial before enforcing: warnings and audit annotations only. Deny and Warn exclude each other.
    for (const b of render('admissionPolicy.validationActions={Warn,Audit}').filter(
      (m) => m.kind === 'ValidatingAdmissionPolicyBinding',
    ))
      expect(b.spec.validationActions).toEqual(['Warn', 'Audit']);
    expect(() => render('admissionPolicy.validationActions={Deny,Warn}')).toThrow(
      /admissionPolicy.validationActions: Deny and Warn exclude each other/,
    );
    expect(() => render('admissionPolicy.validationActions={Block}')).toThrow(/validationActions/);
    // The API server type-checks the expressions against the schemas of the versions a rule names (batch/v1 Job, v1 Pod).
    const vap = kc.makeApiClient(k8s.AdmissionregistrationV1Api);
    for (const p of ['run-jobs', 'run-pods', 'status']) {
      const live = await eventually(`policy ${p} type-checked`, async () => {
        const v = await vap.readValidatingAdmissionPolicy({ name: `${fullname}-${p}` });
        return v.status?.observedGeneration === v.metadata?.generation ? v : undefined;
      });
      expect(live.status?.typeChecking?.expressionWarnings ?? []).toEqual([]);
    }
  });

  it('refuses a person’s copy of a run’s Job (kubectl replace --force of an unsuspended copy), even cluster-admin’s; allows the operator’s create and unrelated Jobs', async () => {
    const original = await operatorCreatesRun('nightly-copied', 10);
    // What `kubectl get job -o yaml`, edited to suspend: false, then `kubectl replace --force` sends after the delete.
    const copy: k8s.V1Job = {
      metadata: {
        name: 'nightly-copy',
        labels: original.metadata!.labels,
        annotations: original.metadata!.annotations,
      },
      spec: {
        ...original.spec!,
        suspend: false,
        selector: undefined,
        template: {
          ...original.spec!.template,
          metadata: { ...original.spec!.template.metadata, labels: { ...original.spec!.template.metadata!.labels } },
        },
      },
    };
    for (const k of Object.keys(copy.spec!.template.metadata!.labels!))
      if (k.includes('controller-uid') || k.includes('job-name')) delete copy.spec!.template.metadata!.labels![k];
    for (const who of [jane, admin]) {
      const r = await refusal(who.createJob(copy));
      expect(r.code).toBe(403);
      expect(r.message).toContain(`ValidatingAdmissionPolicy '${fullname}-run-jobs'`);
      expect(r.message).toContain(
        `Job ${ns.name}/nightly-copy carries the labels of a run of SingletonJob ${ns.name}/nightly: only the singleton-operator creates a run's Job`,
      );
      expect(r.message).toContain('annotate the SingletonJob with singleton.dev/run-now=<a new id>');
    }
    // The run labels on the Pod template alone count too (its Pods would be counted as a run's).
    const templateOnly: k8s.V1Job = {
      metadata: { name: 'sneaky' },
      spec: {
        template: {
          metadata: { labels: { [Keys.ownerUid]: sj.metadata!.uid! } },
          spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] },
        },
      },
    };
    expect((await refusal(jane.createJob(templateOnly))).message).toContain(
      `Job ${ns.name}/sneaky carries the labels of a run of a SingletonJob`,
    );
    // A Job of one's own: created unsuspended, or suspended and then resumed, is no business of the policy.
    const own = await jane.createJob({
      metadata: { name: 'own', labels: { team: 'a' } },
      spec: {
        suspend: true,
        template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox' }] } },
      },
    });
    expect(own.metadata!.uid).toBeTruthy();
    await jane.patchJob('own', { spec: { suspend: false } });
    await eventually(
      'the unrelated Job to complete',
      async () => isComplete(await admin.batch.readNamespacedJob({ namespace: ns.name, name: 'own' })),
      30_000,
    );
  });

  it('refuses unsuspending a run’s Job and changing its singleton.dev/ record; allows other labels, suspending, and the operator’s release', async () => {
    const job = await operatorCreatesRun('nightly-held', 20);
    const unsuspend = await refusal(jane.patchJob('nightly-held', { spec: { suspend: false } }));
    expect(unsuspend.code).toBe(403);
    expect(unsuspend.message).toContain(
      `Job ${ns.name}/nightly-held is a run of SingletonJob ${ns.name}/nightly: only the singleton-operator releases (unsuspends) it`,
    );
    expect(unsuspend.message).toContain('to stop or hold runs, suspend the SingletonJob (spec.suspend: true)');
    expect(unsuspend.message).toContain('singleton.dev/run-now');
    // The record: the token annotation (Job and Pod template — a suspended Job's template labels and
    // annotations are mutable, and a downward-API volume would show the changed token), the owner label.
    const record: [string, unknown][] = [
      ['the Job’s token', { metadata: { annotations: { [Keys.token]: '99' } } }],
      [
        'the Pod template’s token',
        [{ op: 'replace', path: `/spec/template/metadata/annotations/${ptr(Keys.token)}`, value: '99' }],
      ],
      ['the owner label (the first step of a two-step unsuspend)', { metadata: { labels: { [Keys.ownerUid]: null } } }],
      ['the Pod template’s run label', [{ op: 'remove', path: `/spec/template/metadata/labels/${ptr(Keys.run)}` }]],
      ['a new singleton.dev/ annotation', { metadata: { annotations: { [Keys.released]: 'now' } } }],
    ];
    for (const [what, body] of record) {
      const r = await refusal(jane.patchJob('nightly-held', body, Array.isArray(body) ? jsonPatch : merge));
      expect([what, r.code]).toEqual([what, 403]);
      expect(r.message).toContain(
        `Job ${ns.name}/nightly-held is a run of SingletonJob ${ns.name}/nightly: its singleton.dev/ labels and annotations (owner, run, fencing token, attempt) are the singleton-operator's record`,
      );
      expect(r.message).toContain('to end this run, delete the Job');
    }
    // Everything else about the Job stays open to whoever RBAC allows.
    await jane.patchJob('nightly-held', {
      metadata: { labels: { team: 'payroll' }, annotations: { note: 'looked at it' } },
    });
    await jane.patchJob('nightly-held', { spec: { suspend: true } });
    // The operator releases it, exactly as it does (a JSON patch testing the UID it recorded).
    await operator.patchJob(
      'nightly-held',
      [
        { op: 'test', path: '/metadata/uid', value: job.metadata!.uid },
        { op: 'replace', path: '/spec/suspend', value: false },
        { op: 'add', path: `/metadata/annotations/${ptr(Keys.released)}`, value: new Date().toISOString() },
      ],
      jsonPatch,
    );
    await eventually(
      'the held run’s Pod running',
      async () => (await podsOf('nightly-held')).find((p) => p.status?.phase === 'Running'),
      30_000,
    );
  });

  it('with kueue.enabled, lets Kueue’s ServiceAccount unsuspend (admit) only a run’s Job the operator handed to Kueue (release marker and Workload UID), never an unrecorded one', async () => {
    const kueue = new As(userKubeConfig(kueueUser), ns.name);
    await kc.makeApiClient(k8s.RbacAuthorizationV1Api).createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'kueue-edit' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
        subjects: [{ kind: 'User', name: kueueUser, apiGroup: 'rbac.authorization.k8s.io' }],
      },
    });
    const job = await operatorCreatesRun('nightly-kueue', 30);
    // Unrecorded (a deposed leader's late create, Kueue admitting it without the operator's check): refused.
    const unrecorded = await refusal(kueue.patchJob('nightly-kueue', { spec: { suspend: false } }));
    expect(unrecorded.code).toBe(403);
    expect(unrecorded.message).toContain('only the singleton-operator releases (unsuspends) it');
    // Nor may Kueue stamp the hand-out itself.
    expect(
      (
        await refusal(
          kueue.patchJob('nightly-kueue', {
            metadata: { annotations: { [Keys.released]: 'now', [Keys.kueueWorkload]: 'x' } },
          }),
        )
      ).code,
    ).toBe(403);
    // The operator's release of a Job Kueue manages: marker and Workload UID, no unsuspend.
    await operator.patchJob(
      'nightly-kueue',
      [
        { op: 'test', path: '/metadata/uid', value: job.metadata!.uid },
        { op: 'add', path: `/metadata/annotations/${ptr(Keys.released)}`, value: new Date().toISOString() },
        { op: 'add', path: `/metadata/annotations/${ptr(Keys.kueueWorkload)}`, value: 'workload-uid' },
      ],
      jsonPatch,
    );
    // A person still may not; Kueue, admitting it, may.
    expect((await refusal(jane.patchJob('nightly-kueue', { spec: { suspend: false } }))).code).toBe(403);
    await kueue.patchJob('nightly-kueue', { spec: { suspend: false } });
    await eventually(
      'the handed-out run’s Pod running',
      async () => (await podsOf('nightly-kueue')).find((p) => p.status?.phase === 'Running'),
      30_000,
    );
  });

  it('refuses relabelling a run’s Pod out of its Job, for everyone (issue 21 item 1c); other labels and annotations stay open and no second Pod starts', async () => {
    const [pod] = await podsOf('nightly-held');
    const name = pod!.metadata!.name!;
    const uid = pod!.metadata!.labels!['batch.kubernetes.io/controller-uid']!;
    expect(uid).toBe(jobs.get('nightly-held')!.metadata!.uid);
    const bound = `Pod ${ns.name}/${name} is the Pod of run nightly-held of SingletonJob ${ns.name}/nightly: its labels batch.kubernetes.io/controller-uid and controller-uid bind it to its Job`;
    for (const [who, labels] of [
      [jane, { 'batch.kubernetes.io/controller-uid': 'quarantined' }],
      [jane, { 'batch.kubernetes.io/controller-uid': null }],
      [jane, { 'controller-uid': null }],
      [admin, { 'batch.kubernetes.io/controller-uid': 'quarantined', 'controller-uid': 'quarantined' }],
    ] as const) {
      const r = await refusal(who.patchPod(name, { metadata: { labels } }));
      expect(r.code).toBe(403);
      expect(r.message).toContain(`ValidatingAdmissionPolicy '${fullname}-run-pods'`);
      expect(r.message).toContain(bound);
      expect(r.message).toContain('To stop it, delete the Pod or the Job');
    }
    // Its singleton.dev/ labels and annotations too: without singleton.dev/run the Pod would leave the policy's reach (and the operator's count).
    for (const body of [
      { metadata: { labels: { [Keys.run]: null } } },
      { metadata: { annotations: { [Keys.token]: '99' } } },
    ]) {
      const r = await refusal(jane.patchPod(name, body));
      expect(r.code).toBe(403);
      expect(r.message).toContain(
        `Pod ${ns.name}/${name} is the Pod of run nightly-held of SingletonJob ${ns.name}/nightly: its singleton.dev/ labels and annotations (run, fencing token, attempt) are the singleton-operator's record`,
      );
    }
    const debugged = await jane.patchPod(name, {
      metadata: { labels: { debug: 'true' }, annotations: { 'example.com/note': 'looking' } },
    });
    expect(debugged.metadata!.labels).toMatchObject({
      debug: 'true',
      'batch.kubernetes.io/controller-uid': uid,
      [Keys.run]: 'nightly-held',
    });
    // `kubectl debug` (an ephemeral container, a subresource the policy does not match; `edit` lacks it, cluster-admin has it).
    const withDebugger = await admin.core.patchNamespacedPodEphemeralcontainers(
      {
        namespace: ns.name,
        name,
        body: { spec: { ephemeralContainers: [{ name: 'debugger', image: 'busybox', targetContainerName: 'main' }] } },
      },
      merge,
    );
    expect(withDebugger.spec!.ephemeralContainers!.map((c) => c.name)).toEqual(['debugger']);
    const job = await admin.batch.readNamespacedJob({ namespace: ns.name, name: 'nightly-held' });
    expect(job.status?.active).toBe(1);
    expect((await podsOf('nightly-held')).map((p) => p.metadata!.name)).toEqual([name]);
  });

  it('lets the Job controller finish a run and the garbage collector orphan and delete one; a person may suspend and delete a run’s Job but not resume it', async () => {
    // The Job controller: creates the Pod, removes its tracking finalizer (a Pod update), completes the Job.
    await operatorCreatesRun('nightly-quick', 30, {
      ...sj,
      spec: { ...sj.spec, jobTemplate: singletonJob('nightly', {}).spec.jobTemplate },
    });
    await operator.patchJob('nightly-quick', { spec: { suspend: false } });
    await eventually(
      'the run’s Job to complete',
      async () => isComplete(await admin.batch.readNamespacedJob({ namespace: ns.name, name: 'nightly-quick' })),
      30_000,
    );
    const [done] = await eventually('the Pod’s tracking finalizer removed', async () => {
      const pods = await podsOf('nightly-quick');
      return pods.length === 1 && !(pods[0]!.metadata!.finalizers ?? []).length ? pods : undefined;
    });
    expect(done!.status?.phase).toBe('Succeeded');
    // The garbage collector: `kubectl delete job --cascade=orphan` removes the Pod's ownerReference (a Pod update).
    await jane.batch.deleteNamespacedJob({ namespace: ns.name, name: 'nightly-quick', propagationPolicy: 'Orphan' });
    await eventually('the orphaned Pod without ownerReferences', async () => {
      const pods = await podsOf('nightly-quick');
      return pods.length === 1 && !(pods[0]!.metadata!.ownerReferences ?? []).length;
    });
    await jane.core.deleteNamespacedPod({ namespace: ns.name, name: done!.metadata!.name! });
    await eventually('the orphaned Pod deleted', async () => (await podsOf('nightly-quick')).length === 0);
    // A person suspends the running run (its Pod is deleted: the attempt has ended), cannot resume it, deletes it in the foreground (the GC's finalizer update).
    await jane.patchJob('nightly-held', { spec: { suspend: true } });
    await eventually('the suspended run’s Pod gone', async () => (await podsOf('nightly-held')).length === 0, 30_000);
    expect((await refusal(jane.patchJob('nightly-held', { spec: { suspend: false } }))).message).toContain(
      'an attempt that was suspended again has ended',
    );
    await jane.batch.deleteNamespacedJob({ namespace: ns.name, name: 'nightly-held', propagationPolicy: 'Foreground' });
    await eventually('the foreground-deleted Job gone', async () => {
      const left = await admin.batch.listNamespacedJob({
        namespace: ns.name,
        fieldSelector: 'metadata.name=nightly-held',
      });
      return left.items.length === 0;
    });
  });

  it('lets only the operator write SingletonJob status; a person still changes the spec and requests runs', async () => {
    for (const who of [jane, admin]) {
      const r = await refusal(who.patchStatus('nightly', { status: { currentToken: 1000 } }));
      expect(r.code).toBe(403);
      expect(r.message).toContain(`ValidatingAdmissionPolicy '${fullname}-status'`);
      expect(r.message).toContain(
        `the status of SingletonJob ${ns.name}/nightly is the singleton-operator's fencing record (run, token, leader term) and is written only by ${operatorUser}.`,
      );
      expect(r.message).toContain(
        'spec.suspend: true to stop scheduling, the annotation singleton.dev/run-now=<a new id> to run now',
      );
    }
    const written = (await operator.patchStatus('nightly', { status: { observedGeneration: 1 } })) as SingletonJob;
    expect(written.status?.observedGeneration).toBe(1);
    await jane.patchSingletonJob('nightly', {
      spec: { suspend: false },
      metadata: { annotations: { [Keys.runNow]: 'r1' } },
    });
    await jane.patchSingletonJob('nightly', { spec: { suspend: true } });
  });

  it('the operator, under the chart’s RBAC and this policy, runs a SingletonJob from request to success without a single refusal', async () => {
    running = await startController(kc, [opNs.name]);
    void running.lead(fakeLeadership(5000));
    const api = new Api(kc, opNs.name);
    await api.create(singletonJob('once', {}));
    await requestRun(api, 'once', 'r1');
    const status = await eventually(
      'the run to succeed',
      async () => {
        const s = (await api.get('once')).status;
        return s?.recentRuns?.some((r) => r.outcome === 'Succeeded') ? s : undefined;
      },
      60_000,
    );
    expect(status.currentToken).toBeGreaterThanOrEqual(5000);
    // expectNoForbidden (after each test, test/support/singletonjobs.ts) fails on any 403 the operator logged.
  });
});

// Two installations whose watchNamespaces overlap (the guarantee table's
// "several installations"): each one's policies would refuse the other's
// writes in the shared namespace, so the operator acting there could not write
// its objects and the other could never take them over. `helm install` and
// `helm upgrade` look up the enforcing bindings of other releases and refuse
// the overlap until each admits the other (admissionPolicy.trustedOperators).
describeVap('the chart’s admission policy, two installations over one namespace', () => {
  // On a control plane of its own: the installs' Deployments and bindings are what the check looks up, and
  // they would meet other test files' cluster-wide installs (helm.test.ts) on the shared one.
  let cp: ControlPlane | undefined;
  let admin: k8s.KubeConfig;
  let adminKubeconfig: string;
  const id = Date.now().toString(36);
  const releases = { a: `so-ov-a-${id}`, b: `so-ov-b-${id}` };
  const spaces: Record<string, { name: string; cleanup: () => Promise<void> }> = {};
  const user = (r: 'a' | 'b') => `system:serviceaccount:${spaces[r]!.name}:${releases[r]}-singleton-operator`;
  const install = (r: 'a' | 'b', verb: 'install' | 'upgrade', ...set: string[]) =>
    helm(resolveHelm(), adminKubeconfig, [
      verb,
      releases[r],
      chartDir,
      '-n',
      spaces[r]!.name,
      ...['crds.enabled=false', 'rbac.aggregateToDefaultRoles=false', 'replicaCount=1', ...set].flatMap((v) =>
        v.startsWith('--') ? [v] : ['--set', v],
      ),
    ]);

  beforeAll(async () => {
    if (cluster.local) {
      cp = await ControlPlane.start();
      admin = cp.kubeConfig();
      adminKubeconfig = cp.state.kubeconfig;
    } else {
      admin = kc;
      adminKubeconfig = cluster.kubeconfig;
    }
    await installCrd(adminKubeconfig);
    for (const key of ['a', 'b', 'shared', 'onlyB'])
      spaces[key] = await withNamespace(admin, `vap-ov-${key.toLowerCase()}`);
  }, 120_000);
  afterAll(async () => {
    if (cp) return cp.stop();
    for (const r of ['a', 'b'] as const)
      if (spaces[r])
        helm(resolveHelm(), adminKubeconfig, [
          'uninstall',
          releases[r],
          '-n',
          spaces[r].name,
          '--ignore-not-found',
          '--wait',
        ]);
    for (const s of Object.values(spaces)) await s.cleanup();
  });

  it('refuses to install or upgrade into an overlap the two releases do not admit each other in, naming the fix; once each admits the other, both operators may write there and nobody else may', async () => {
    const shared = spaces.shared!.name;
    const onlyB = spaces.onlyB!.name;
    install('a', 'install', `watchNamespaces={${shared}}`);
    // Disjoint: no check stands in the way.
    install('b', 'install', `watchNamespaces={${onlyB}}`);
    const overlap =
      (...set: string[]) =>
      () =>
        install('b', 'upgrade', `watchNamespaces={${onlyB},${shared}}`, ...set);
    // B's policies would refuse A's writes (found by A's Deployment, whether or not A enforces policies).
    expect(overlap()).toThrow(
      new RegExp(
        `this release's admission policies would refuse the writes of the installation in Deployment ${spaces.a!.name}/${releases.a}-singleton-operator \\(ServiceAccount ${user('a')}\\) in ${shared}, which both watch.*list ${user('a')} in this release's admissionPolicy.trustedOperators`,
      ),
    );
    // A's policies would refuse B's (found by A's bindings); the message gives the upgrade of A that fixes it.
    const theyRefuse = new RegExp(
      `the installation ${spaces.a!.name}/${releases.a} enforces its admission policies in ${shared}, which this release watches too, and they do not admit this release's ServiceAccount ${user('b')}.*helm upgrade ${releases.a} <chart> -n ${spaces.a!.name} --reuse-values --set 'admissionPolicy.trustedOperators=\\{${user('b')}\\}'`,
    );
    expect(overlap(`admissionPolicy.trustedOperators={${user('a')}}`)).toThrow(theyRefuse);
    // The same for an installation that enforces no policies of its own: A's would still refuse it.
    expect(overlap('admissionPolicy.enabled=false')).toThrow(theyRefuse);
    // The fix the message gives, in its order: A first, then B.
    install('a', 'upgrade', '--reuse-values', `admissionPolicy.trustedOperators={${user('b')}}`);
    overlap(`admissionPolicy.trustedOperators={${user('a')}}`)();

    const sj = (await new Api(admin, shared).create(singletonJob('shared', { suspend: true }))) as SingletonJob;
    const patch = (who: k8s.KubeConfig) =>
      new As(who, shared).patchStatus(sj.metadata!.name!, { status: { observedGeneration: 1 } }, 'All');
    // Each operator's ServiceAccount (its RBAC from its own release) passes both releases' policies.
    for (const r of ['a', 'b'] as const) {
      await eventually(`${r}'s operator admitted by both policies`, async () => {
        try {
          await patch(await serviceAccountKubeConfig(admin, spaces[r]!.name, `${releases[r]}-singleton-operator`));
          return true;
        } catch (err) {
          const e = await refusal(Promise.reject(err));
          if (e.code === 403 && e.message.includes('ValidatingAdmissionPolicy')) return false;
          throw new Error(`unexpected refusal: ${e.code} ${e.message}`);
        }
      });
    }
    // Anybody else, cluster-admin included, is still refused, and told whom the record belongs to.
    const r = await refusal(patch(admin));
    expect(r.code).toBe(403);
    expect(r.message).toMatch(/is written only by system:serviceaccount:\S+, system:serviceaccount:\S+\./);
  }, 120_000);
});
