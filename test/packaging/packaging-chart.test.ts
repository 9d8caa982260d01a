// Offline checks of the chart, the plain manifests and the examples. That
// manifests/install.yaml is what the chart renders is proven with helm in
// test/integration/helm.test.ts; here the rendered objects are inspected.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { copiedFiles, CRD_TEMPLATES } from '../../scripts/generate-manifests.ts';
import { singletonJobSchema } from '../../src/api/v1alpha1/singletonjob.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [key: string]: unknown;
}
interface Rule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

const docs = (text: string) =>
  parseAllDocuments(text)
    .map((d) => d.toJS() as K8sObject | null)
    .filter((d): d is K8sObject => d !== null);

const install = docs(read('manifests/install.yaml'));
const byKind = (kind: string) => install.filter((o) => o.kind === kind);

describe('chart sources', () => {
  it('carries exact copies of the CRDs (and aggregated roles) from manifests/', () => {
    for (const [file, content] of copiedFiles()) expect({ file, content: read(file) }).toEqual({ file, content });
    const chartCrds = readdirSync(path.join(root, CRD_TEMPLATES)).sort();
    expect(chartCrds).toEqual(
      readdirSync(path.join(root, 'manifests/crds'))
        .filter((n) => n.endsWith('.yaml'))
        .sort(),
    );
  });

  it('renders the CRD as a template (upgraded by helm upgrade), not from crds/ (installed once, never upgraded)', () => {
    expect(existsSync(path.join(root, 'charts/singleton-operator/crds'))).toBe(false);
    for (const name of readdirSync(path.join(root, CRD_TEMPLATES))) {
      const template = read(`${CRD_TEMPLATES}/${name}`);
      expect(template).toMatch(/^\{\{- if \.Values\.crds\.enabled \}\}$/m);
      expect(template).toContain('{{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n');
    }
  });

  it('generates the CRD without YAML anchors or aliases', () => {
    for (const name of readdirSync(path.join(root, 'manifests/crds'))) {
      const doc = parseAllDocuments(read(`manifests/crds/${name}`))[0]!;
      expect(doc.toString()).not.toMatch(/(:|-) [&*]a\d+\b/);
    }
  });

  it('accepts global (as a subchart) and the usual extension points in its schema', () => {
    const schema = JSON.parse(read('charts/singleton-operator/values.schema.json')) as {
      properties: Record<string, unknown>;
    };
    for (const key of [
      'global',
      'crds',
      'extraArgs',
      'extraEnv',
      'extraVolumes',
      'extraVolumeMounts',
      'podAnnotations',
      'priorityClassName',
      'topologySpreadConstraints',
      'prometheusRule',
      'grafanaDashboard',
    ]) {
      expect({ key, allowed: key in schema.properties }).toEqual({ key, allowed: true });
    }
  });

  it('versions the app like package.json', () => {
    const version = (JSON.parse(read('package.json')) as { version: string }).version;
    expect(read('charts/singleton-operator/Chart.yaml')).toContain(`appVersion: "${version}"`);
  });

  it('has a strict values schema: additionalProperties false on every object with properties', () => {
    const schema = JSON.parse(read('charts/singleton-operator/values.schema.json')) as Record<string, unknown>;
    const loose: string[] = [];
    const walk = (node: unknown, where: string) => {
      if (!node || typeof node !== 'object') return;
      const n = node as Record<string, unknown>;
      if (n.properties && n.additionalProperties !== false) loose.push(where);
      for (const [key, value] of Object.entries(n)) walk(value, `${where}.${key}`);
    };
    walk(schema, '$');
    expect(loose).toEqual([]);
  });
});

describe('manifests/install.yaml', () => {
  it('is applied with kubectl: no CRD (manifests/crds/ is applied first) and no Helm managed-by label', () => {
    expect(byKind('CustomResourceDefinition')).toEqual([]);
    expect(
      install
        .filter((o) => o.metadata.labels?.['app.kubernetes.io/managed-by'])
        .map((o) => `${o.kind}/${o.metadata.name}`),
    ).toEqual([]);
  });

  it('installs into a namespace that enforces the restricted Pod Security Standard', () => {
    const [ns] = byKind('Namespace');
    expect(ns?.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
    const clusterScoped = (kind: string) =>
      kind.startsWith('Cluster') ||
      ['Namespace', 'ValidatingAdmissionPolicy', 'ValidatingAdmissionPolicyBinding'].includes(kind);
    for (const o of install.filter((x) => !clusterScoped(x.kind))) expect(o.metadata.namespace).toBe(ns?.metadata.name);
    // The admission policies are on by default (the chart README: Admission policy).
    expect(
      byKind('ValidatingAdmissionPolicy').map((p) =>
        p.metadata.name.replace(/^.*-singleton-operator-|^singleton-operator-/, ''),
      ),
    ).toEqual(['run-jobs', 'run-pods', 'status']);
  });

  it('limits the leader-election Role to its Lease by name, with create in its own rule, lets it record the LeaderElection Event and read the replica Pods (failover evidence)', () => {
    const role = byKind('Role').find((r) => r.metadata.name.endsWith('-leader-election'));
    const rules = (role?.rules ?? []) as Rule[];
    expect(rules).toEqual([
      {
        apiGroups: ['coordination.k8s.io'],
        resources: ['leases'],
        resourceNames: ['singleton-operator'],
        verbs: ['get', 'list', 'watch', 'update'],
      },
      { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
      { apiGroups: [''], resources: ['events'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
    ]);
    const deployment = byKind('Deployment')[0] as unknown as {
      spec: {
        selector: { matchLabels: Record<string, string> };
        template: { spec: { containers: Array<{ name: string; env: Array<{ name: string; value?: string }> }> } };
      };
    };
    const container = deployment.spec.template.spec.containers[0]!;
    const env = container.env ?? [];
    expect(env.find((e) => e.name === 'LEASE_NAME')?.value).toBe('singleton-operator');
    // The evidence selector is exactly the Deployment's own selector, and the container is the one the operator runs in.
    const selector = Object.fromEntries(
      (env.find((e) => e.name === 'REPLICA_POD_SELECTOR')?.value ?? '').split(',').map((kv) => kv.split('=')),
    );
    expect(selector).toEqual(deployment.spec.selector.matchLabels);
    expect(env.find((e) => e.name === 'REPLICA_CONTAINER')?.value).toBe(container.name);
  });

  it('grants no Secrets, no Pod create/update and no wildcards', () => {
    const rules = [...byKind('Role'), ...byKind('ClusterRole')]
      .filter(
        (r) =>
          !r.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-view'] &&
          !r.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-edit'] &&
          !r.metadata.labels?.['rbac.authorization.k8s.io/aggregate-to-admin'],
      )
      .flatMap((r) => (r.rules ?? []) as Rule[]);
    expect(rules.length).toBeGreaterThan(0);
    for (const rule of rules) {
      expect(rule.resources).not.toContain('secrets');
      expect([...rule.verbs, ...rule.resources, ...rule.apiGroups]).not.toContain('*');
      // Read Pods (the replicas' own, and runs'); delete only a run's leftovers: never create, update or patch one.
      if (rule.resources.includes('pods'))
        expect(['delete', 'get', 'list', 'watch']).toEqual(expect.arrayContaining(rule.verbs));
    }
  });

  it('runs 3 spread replicas under a restricted security context with probes', () => {
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered manifests are arbitrary YAML
    const [deployment] = byKind('Deployment') as unknown as Array<{ spec: Record<string, any> }>;
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- rendered manifests are arbitrary YAML
    const spec = deployment?.spec as Record<string, any>;
    expect(spec.replicas).toBe(3);
    const pod = spec.template.spec;
    expect(pod.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
    expect(Number.isInteger(pod.securityContext.runAsUser) && pod.securityContext.runAsUser > 0).toBe(true);
    expect(pod.topologySpreadConstraints[0]).toMatchObject({ topologyKey: 'kubernetes.io/hostname', maxSkew: 1 });
    const [container] = pod.containers;
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.livenessProbe.httpGet.path).toBe('/livez');
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(20);
  });

  it('has a PodDisruptionBudget and a metrics Service', () => {
    expect(byKind('PodDisruptionBudget')).toHaveLength(1);
    expect(byKind('Service')[0]?.metadata.name).toBe('singleton-operator-metrics');
    expect(byKind('ServiceMonitor')).toHaveLength(0);
    expect(byKind('Secret')).toHaveLength(0);
  });
});

describe('examples', () => {
  const files = readdirSync(path.join(root, 'manifests/examples')).filter((n) => n.endsWith('.yaml'));
  it.each(files)('%s holds valid SingletonJobs', (file) => {
    const jobs = docs(read(`manifests/examples/${file}`)).filter((o) => o.kind === 'SingletonJob');
    expect(jobs.length).toBeGreaterThan(0);
    for (const job of jobs) {
      const parsed = singletonJobSchema.safeParse(job);
      expect(parsed.success ? 'valid' : parsed.error.message).toBe('valid');
      expect(job.apiVersion).toBe('singleton.dev/v1alpha1');
      expect(job.metadata.namespace).toBeUndefined();
    }
  });

  it('include the nightly payroll batch at 00:00 Europe/Berlin and an on-demand migration', () => {
    const all = files
      .flatMap((f) => docs(read(`manifests/examples/${f}`)))
      .filter((o) => o.kind === 'SingletonJob') as Array<
      K8sObject & { spec: { schedule?: string; timeZone?: string } }
    >;
    expect(all.find((j) => j.metadata.name === 'nightly-payroll')?.spec).toMatchObject({
      schedule: '0 0 * * *',
      timeZone: 'Europe/Berlin',
    });
    expect(all.find((j) => j.metadata.name === 'orders-backfill')?.spec.schedule).toBeUndefined();
  });
});
