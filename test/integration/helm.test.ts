// The Helm chart: lint-clean, in step with manifests/install.yaml, strict about
// values, installable into a namespace that enforces the restricted Pod
// Security Standard (kwok "runs" the Pods), least-privilege for its
// ServiceAccount, and `helm uninstall` leaves nothing but the CRD.
import { cpSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { resolveHelm } from '../controlplane/binaries.ts';
import { chartDir, copiedFiles, renderInstall, root } from '../../scripts/generate-manifests.ts';
import { eventually, testCluster } from '../support/cluster.ts';
import { helm, kubectl } from '../dev/replicas.ts';
import { installCrd } from '../support/singletonjobs.ts';

const helmBin = resolveHelm();
const cluster = testCluster();
const kc = cluster.kubeConfig();
const release = `so-helm-${Date.now().toString(36)}`;
const namespace = release;

const template = (...set: string[]) =>
  helm(helmBin, cluster.kubeconfig, [
    'template',
    'x',
    chartDir,
    '--kube-version',
    '1.36.3',
    ...set.flatMap((s) => ['--set', s]),
  ]);

describe('chart, offline', () => {
  it('passes helm lint --strict', () => {
    const out = helm(helmBin, cluster.kubeconfig, ['lint', '--strict', chartDir]);
    expect(out).toContain('0 chart(s) failed');
    expect(out).not.toMatch(/\[(WARNING|ERROR)\]/);
  });

  it('renders exactly the committed manifests (run `npm run manifests:generate` after changing the chart)', () => {
    expect(renderInstall(helmBin)).toBe(readFileSync(path.join(root, 'manifests/install.yaml'), 'utf8'));
    for (const [file, content] of copiedFiles()) expect(readFileSync(path.join(root, file), 'utf8')).toBe(content);
  });

  it('refuses unknown values and broken election timings with a readable message', () => {
    expect(() => template('replicas=2')).toThrow(/additional properties 'replicas' not allowed/);
    expect(() => template('leaderElection.leaseDurationSeconds=5')).toThrow(
      /leaseDurationSeconds \(5\) must be greater than leaderElection.renewDeadlineSeconds \(10\)/,
    );
    expect(() => template('leaderElection.retryPeriodSeconds=9')).toThrow(
      /renewDeadlineSeconds \(10\) must be greater than 1.2 × leaderElection.retryPeriodSeconds \(9\)/,
    );
    expect(() => template('logLevel=loud')).toThrow(/logLevel/);
  });

  it('switches to per-namespace Roles with watchNamespaces', () => {
    const out = template('watchNamespaces={team-a,team-b}', 'rbac.aggregateToDefaultRoles=false', 'crds.enabled=false');
    expect(out).not.toContain('kind: ClusterRoleBinding');
    expect(out).not.toContain('kind: ClusterRole\n');
    expect(out.match(/^kind: RoleBinding$/gm)).toHaveLength(3);
    expect(out).toContain('value: "team-a,team-b"');
  });

  it('composes as a subchart: global values, per-release cluster-wide names, the usual extension points', () => {
    const out = template(
      'global.imageRegistry=example.org',
      'extraArgs={--log-level=debug}',
      'extraVolumes[0].name=ca',
      'extraVolumes[0].configMap.name=ca',
      'extraVolumeMounts[0].name=ca',
      'extraVolumeMounts[0].mountPath=/etc/ca',
      'podAnnotations.a=b',
      'priorityClassName=system-cluster-critical',
      'topologySpreadConstraints[0].maxSkew=2',
      'topologySpreadConstraints[0].topologyKey=topology.kubernetes.io/zone',
      'topologySpreadConstraints[0].whenUnsatisfiable=DoNotSchedule',
    );
    for (const piece of [
      '- --log-level=debug',
      'mountPath: /etc/ca',
      'priorityClassName: system-cluster-critical',
      'topologyKey: topology.kubernetes.io/zone',
      'a: b',
    ])
      expect(out).toContain(piece);
    expect(out).not.toContain('topologyKey: kubernetes.io/hostname');
    const clusterScoped = (release: string) =>
      helm(helmBin, cluster.kubeconfig, [
        'template',
        release,
        chartDir,
        '--kube-version',
        '1.36.3',
        '--set',
        'crds.enabled=false',
      ])
        .split('\n---\n')
        .filter((doc) => /^kind: Cluster(Role|RoleBinding)$/m.test(doc))
        .map((doc) => /^  name: (.*)$/m.exec(doc)?.[1]);
    const [a, b] = [clusterScoped('one'), clusterScoped('two')];
    expect(a.length).toBeGreaterThan(0);
    expect(a.filter((name) => b.includes(name))).toEqual([]);
  });

  it('renders the CRD as a template, kept on uninstall, only with crds.enabled', () => {
    expect(template()).toMatch(
      /kind: CustomResourceDefinition\nmetadata:\n  name: singletonjobs.singleton.dev\n  annotations:\n    helm.sh\/resource-policy: keep\n/,
    );
    expect(template('crds.keep=false')).not.toContain('helm.sh/resource-policy');
    expect(template('crds.enabled=false')).not.toContain('kind: CustomResourceDefinition');
  });
});

// Before, the CRD lived in the chart's crds/ folder: Helm created it once,
// without owning it, and never upgraded it. The README's upgrade steps hand it
// to the release (label and annotations Helm checks), after which `helm
// upgrade` applies the CRD template and `helm uninstall` keeps it.
describe('chart, CRD upgrade from the crds/ layout', () => {
  const crd = 'singletonjobs.singleton.dev';
  const release = `so-crd-${Date.now().toString(36)}`;
  const ns = release;
  const disown = () => {
    kubectl(cluster.kubeconfig, [
      'annotate',
      'crd',
      crd,
      'meta.helm.sh/release-name-',
      'meta.helm.sh/release-namespace-',
      'helm.sh/resource-policy-',
    ]);
    kubectl(cluster.kubeconfig, ['label', 'crd', crd, 'app.kubernetes.io/managed-by-']);
  };
  let oldChart: string;

  beforeAll(async () => {
    await installCrd(cluster.kubeconfig);
    disown();
    // Today's chart: the CRD in crds/, no template.
    oldChart = mkdtempSync(path.join(tmpdir(), 'old-chart-'));
    cpSync(chartDir, oldChart, { recursive: true });
    rmSync(path.join(oldChart, 'templates', 'crds'), { recursive: true });
    cpSync(path.join(root, 'manifests', 'crds'), path.join(oldChart, 'crds'), { recursive: true });
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: ns } } });
  });
  afterAll(async () => {
    helm(helmBin, cluster.kubeconfig, ['uninstall', release, '-n', ns, '--ignore-not-found']);
    disown();
    rmSync(oldChart, { recursive: true, force: true });
    await kc
      .makeApiClient(k8s.CoreV1Api)
      .deleteNamespace({ name: ns })
      .catch(() => undefined);
  });

  it('takes the CRD over on upgrade after the documented label and annotations, and keeps it on uninstall', () => {
    // Cluster-wide on the shared control plane: the admission policies (on by default) would refuse the
    // other test files' admin status writes meanwhile; they are installed by Helm in admission-policy.test.ts.
    const small = [
      '--set',
      'replicaCount=1',
      '--set',
      'rbac.aggregateToDefaultRoles=false',
      '--set',
      'admissionPolicy.enabled=false',
    ];
    helm(helmBin, cluster.kubeconfig, ['install', release, oldChart, '-n', ns, ...small]);
    // Without the hand-over Helm refuses to take an object it did not create.
    expect(() => helm(helmBin, cluster.kubeconfig, ['upgrade', release, chartDir, '-n', ns, ...small])).toThrow(
      /invalid ownership metadata|cannot be imported/,
    );
    // The README's upgrade steps.
    kubectl(cluster.kubeconfig, ['label', 'crd', crd, 'app.kubernetes.io/managed-by=Helm', '--overwrite']);
    kubectl(cluster.kubeconfig, [
      'annotate',
      'crd',
      crd,
      `meta.helm.sh/release-name=${release}`,
      `meta.helm.sh/release-namespace=${ns}`,
      '--overwrite',
    ]);
    helm(helmBin, cluster.kubeconfig, ['upgrade', release, chartDir, '-n', ns, ...small]);
    const annotations = JSON.parse(
      kubectl(cluster.kubeconfig, ['get', 'crd', crd, '-o', 'jsonpath={.metadata.annotations}']),
    ) as Record<string, string>;
    expect(annotations).toMatchObject({ 'helm.sh/resource-policy': 'keep', 'meta.helm.sh/release-name': release });
    helm(helmBin, cluster.kubeconfig, ['uninstall', release, '-n', ns, '--wait']);
    expect(kubectl(cluster.kubeconfig, ['get', 'crd', crd, '-o', 'name']).trim()).toBe(
      `customresourcedefinition.apiextensions.k8s.io/${crd}`,
    );
  });
});

describe('chart, installed', () => {
  const apps = kc.makeApiClient(k8s.AppsV1Api);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const sa = `system:serviceaccount:${namespace}:${release}-singleton-operator`;
  const can = (verb: string, resource: string, ns = namespace, name?: string) => {
    const [kind = '', subresource] = resource.split('/');
    const args = [
      'auth',
      'can-i',
      verb,
      name ? `${kind}/${name}` : kind,
      '-n',
      ns,
      '--as',
      sa,
      ...(subresource ? [`--subresource=${subresource}`] : []),
    ];
    try {
      return kubectl(cluster.kubeconfig, args).trim() === 'yes';
    } catch {
      return false;
    }
  };

  beforeAll(async () => {
    await core.createNamespace({
      body: {
        metadata: {
          name: namespace,
          labels: {
            'pod-security.kubernetes.io/enforce': 'restricted',
            'pod-security.kubernetes.io/enforce-version': 'latest',
          },
        },
      },
    });
  });
  afterAll(async () => {
    await core.deleteNamespace({ name: namespace }).catch(() => undefined);
  });

  // Installs with the chart's defaults, including the ClusterRoles aggregated to
  // admin/edit/view (cluster-wide names: the e2e test installs without them).
  it('installs, and the restricted namespace admits all 3 replicas', async () => {
    // The CRD belongs to the test harness here (other tests use it meanwhile); the section above installs it with the chart.
    // Without the admission policies (on by default): bound to every namespace of the shared control plane,
    // they would refuse the other test files' admin status writes; admission-policy.test.ts installs them by Helm.
    const out = helm(helmBin, cluster.kubeconfig, [
      'install',
      release,
      chartDir,
      '-n',
      namespace,
      '--set',
      'crds.enabled=false',
      '--set',
      'admissionPolicy.enabled=false',
    ]);
    expect(out).toContain(`kubectl get lease ${release}-singleton-operator -n ${namespace}`);
    expect(out).toContain('kubectl get sj -A');
    const name = `${release}-singleton-operator`;
    const deployment = await eventually(
      '3 ready replicas',
      async () => {
        const d = await apps.readNamespacedDeployment({ name, namespace });
        return d.status?.readyReplicas === 3 ? d : undefined;
      },
      60_000,
    );
    expect(deployment.spec?.template.spec?.securityContext?.runAsNonRoot).toBe(true);
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    for (const name of [
      `${release}-singleton-operator:aggregate-to-edit`,
      `${release}-singleton-operator:aggregate-to-view`,
    ]) {
      expect((await rbac.readClusterRole({ name })).metadata?.annotations?.['meta.helm.sh/release-name']).toBe(release);
    }
    await eventually('the built-in edit and view roles to cover SingletonJobs', async () => {
      const covers = async (role: string, verb: string) =>
        ((await rbac.readClusterRole({ name: role })).rules ?? []).some(
          (r) =>
            r.apiGroups?.includes('singleton.dev') && r.resources?.includes('singletonjobs') && r.verbs.includes(verb),
        );
      return (await covers('edit', 'create')) && (await covers('view', 'list')) && !(await covers('view', 'create'));
    });
    const events = await core.listNamespacedEvent({ namespace });
    expect(events.items.filter((e) => e.reason === 'FailedCreate').map((e) => e.message)).toEqual([]);
  });

  it('lets its ServiceAccount do what the operator needs and nothing more', () => {
    const lease = `${release}-singleton-operator`;
    expect(can('update', 'leases.coordination.k8s.io', namespace, lease)).toBe(true);
    expect(can('watch', 'leases.coordination.k8s.io', namespace, lease)).toBe(true);
    expect(can('create', 'leases.coordination.k8s.io')).toBe(true);
    expect(can('update', 'leases.coordination.k8s.io', namespace, 'someone-elses-lease')).toBe(false);
    expect(can('update', 'leases.coordination.k8s.io', 'default', lease)).toBe(false);
    expect(can('list', 'singletonjobs.singleton.dev', 'default')).toBe(true);
    expect(can('update', 'singletonjobs.singleton.dev/status', 'default')).toBe(true);
    expect(can('update', 'singletonjobs.singleton.dev', 'default')).toBe(false);
    expect(can('create', 'jobs.batch', 'default')).toBe(true);
    expect(can('list', 'pods', 'default')).toBe(true);
    expect(can('create', 'pods', 'default')).toBe(false);
    expect(can('patch', 'pods', 'default')).toBe(false);
    expect(can('create', 'pods/exec', 'default')).toBe(false);
    expect(can('get', 'secrets', namespace)).toBe(false);
    expect(can('list', 'secrets', 'default')).toBe(false);
    expect(can('create', 'events.events.k8s.io', 'default')).toBe(true);
    expect(can('patch', 'events.events.k8s.io', 'default')).toBe(true);
    expect(can('list', 'events', 'default')).toBe(true);
  });

  it('uninstalls, leaving only the CRD', async () => {
    helm(helmBin, cluster.kubeconfig, ['uninstall', release, '-n', namespace, '--wait']);
    const selector = `app.kubernetes.io/instance=${release}`;
    await eventually(
      'no objects of the release',
      async () => {
        const left = kubectl(cluster.kubeconfig, [
          'get',
          'deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,poddisruptionbudgets,configmaps,secrets',
          '-n',
          namespace,
          '-l',
          selector,
          '-o',
          'name',
        ]).trim();
        const clusterLeft = kubectl(cluster.kubeconfig, [
          'get',
          'clusterroles,clusterrolebindings',
          '-l',
          selector,
          '-o',
          'name',
        ]).trim();
        return left === '' && clusterLeft === '' ? true : undefined;
      },
      60_000,
    );
    expect(kubectl(cluster.kubeconfig, ['get', 'clusterroles', '-o', 'name'])).not.toContain(
      `${release}-singleton-operator:aggregate-to`,
    );
    expect(kubectl(cluster.kubeconfig, ['get', 'crd', 'singletonjobs.singleton.dev', '-o', 'name']).trim()).toBe(
      'customresourcedefinition.apiextensions.k8s.io/singletonjobs.singleton.dev',
    );
  });
});
