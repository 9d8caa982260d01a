// Proves the test stack is real: a real API server (reached by kubectl and by
// client-node), CEL transition rules enforced server-side, Jobs that run to
// completion on the kwok node, an audit log that attributes writes, and
// ServiceAccount tokens from the TokenRequest API that RBAC restricts.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { testCluster, withNamespace, eventually, itLocal } from '../support/cluster.ts';
import { statusCode, apiMessage } from '../../src/kube/errors.ts';

const cluster = testCluster();
const kc = cluster.kubeConfig();
const core = kc.makeApiClient(k8s.CoreV1Api);
let ns: { name: string; cleanup: () => Promise<void> };

beforeAll(async () => {
  ns = await withNamespace(kc, 'cp');
});
afterAll(async () => {
  await ns.cleanup();
});

function kubectl(args: string[], kubeconfig = cluster.kubeconfig, input?: string): string {
  return execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
}

describe('the API server', () => {
  it('is reached by kubectl and by client-node, and reports a stamped version', async () => {
    const fromKubectl = JSON.parse(kubectl(['version', '-o', 'json'])) as { serverVersion: { gitVersion: string } };
    const fromClient = await kc.makeApiClient(k8s.VersionApi).getCode();
    expect(fromClient.gitVersion).toBe(fromKubectl.serverVersion.gitVersion);
    if (cluster.local) expect(fromClient.gitVersion).toMatch(/^v1\.\d+\.\d+$/);
    const names = kubectl(['get', 'namespaces', '-o', 'name']).split('\n');
    expect(names).toContain(`namespace/${ns.name}`);
  });

  it('enforces a CRD CEL transition rule on update', async () => {
    const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
    const group = 'probe.singleton-test.dev';
    const plural = `counters${ns.name.replace(/[^a-z0-9]/g, '')}`;
    await ext.createCustomResourceDefinition({
      body: {
        metadata: { name: `${plural}.${group}` },
        spec: {
          group,
          scope: 'Namespaced',
          names: { plural, singular: plural.slice(0, -1), kind: `Counter${ns.name.replace(/[^a-z0-9]/g, '')}` },
          versions: [
            {
              name: 'v1',
              served: true,
              storage: true,
              schema: {
                openAPIV3Schema: {
                  type: 'object',
                  properties: {
                    spec: {
                      type: 'object',
                      required: ['count'],
                      properties: { count: { type: 'integer', minimum: 0 } },
                      x_kubernetes_validations: [
                        { rule: 'self.count >= oldSelf.count', message: 'count may not decrease' },
                      ],
                    },
                  },
                },
              },
            },
          ],
        },
      },
    });
    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const kind = `Counter${ns.name.replace(/[^a-z0-9]/g, '')}`;
    const body = { apiVersion: `${group}/v1`, kind, metadata: { name: 'c1' }, spec: { count: 5 } };
    await eventually('the CRD to be served', async () => {
      await custom.createNamespacedCustomObject({ group, version: 'v1', namespace: ns.name, plural, body });
      return true;
    });
    const current = (await custom.getNamespacedCustomObject({
      group,
      version: 'v1',
      namespace: ns.name,
      plural,
      name: 'c1',
    })) as {
      metadata: { resourceVersion: string };
    };
    const lower = {
      ...body,
      metadata: { name: 'c1', resourceVersion: current.metadata.resourceVersion },
      spec: { count: 3 },
    };
    const err = await custom
      .replaceNamespacedCustomObject({ group, version: 'v1', namespace: ns.name, plural, name: 'c1', body: lower })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(statusCode(err)).toBe(422);
    expect(apiMessage(err)).toContain('count may not decrease');
    const higher = { ...lower, spec: { count: 9 } };
    const updated = (await custom.replaceNamespacedCustomObject({
      group,
      version: 'v1',
      namespace: ns.name,
      plural,
      name: 'c1',
      body: higher,
    })) as {
      spec: { count: number };
    };
    expect(updated.spec.count).toBe(9);
    await ext.deleteCustomResourceDefinition({ name: `${plural}.${group}` });
  });
});

describe('workloads', () => {
  it('schedules a Job onto the kwok node and the Job reaches Complete', async () => {
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    await batch.createNamespacedJob({
      namespace: ns.name,
      body: {
        metadata: { name: 'hello' },
        spec: {
          backoffLimit: 0,
          template: {
            spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] },
          },
        },
      },
    });
    const job = await eventually(
      'Job hello to complete',
      async () => {
        const j = await batch.readNamespacedJob({ name: 'hello', namespace: ns.name });
        return j.status?.conditions?.some((c) => c.type === 'Complete' && c.status === 'True') ? j : undefined;
      },
      60_000,
    );
    expect(job.status?.succeeded).toBe(1);
    const pods = await core.listNamespacedPod({ namespace: ns.name, labelSelector: 'job-name=hello' });
    expect(pods.items).toHaveLength(1);
    expect(pods.items[0]?.spec?.nodeName).toBeTruthy();
    expect(pods.items[0]?.status?.phase).toBe('Succeeded');
  });
});

describe('identities', () => {
  itLocal('attributes a write made with a second client certificate to that identity in the audit log', async () => {
    const local = cluster.local!;
    const user = `auditor-${ns.name}`;
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'auditor-edit' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'edit' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: user }],
      },
    });
    const other = new k8s.KubeConfig();
    other.loadFromFile(local.kubeconfigFor(user));
    const created = await eventually('the RoleBinding to take effect', () =>
      other.makeApiClient(k8s.CoreV1Api).createNamespacedConfigMap({
        namespace: ns.name,
        body: { metadata: { name: 'written-by-auditor' }, data: { a: 'b' } },
      }),
    );
    expect(created.metadata?.name).toBe('written-by-auditor');
    const entry = await eventually('the audit entry', async () =>
      readFileSync(local.state.auditLog, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map(
          (l) =>
            JSON.parse(l) as {
              verb: string;
              user: { username: string };
              objectRef?: { name?: string; namespace?: string; resource?: string };
              responseStatus?: { code: number };
            },
        )
        .find(
          (e) =>
            e.verb === 'create' && e.objectRef?.resource === 'configmaps' && e.objectRef.name === 'written-by-auditor',
        ),
    );
    expect(entry.user.username).toBe(user);
    expect(entry.objectRef?.namespace).toBe(ns.name);
    expect(entry.responseStatus?.code).toBe(201);
  });

  it('authenticates a TokenRequest ServiceAccount token and RBAC denies what its Role does not allow', async () => {
    const rbac = kc.makeApiClient(k8s.RbacAuthorizationV1Api);
    await core.createNamespacedServiceAccount({ namespace: ns.name, body: { metadata: { name: 'reader' } } });
    await rbac.createNamespacedRole({
      namespace: ns.name,
      body: {
        metadata: { name: 'configmap-reader' },
        rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list'] }],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: ns.name,
      body: {
        metadata: { name: 'reader' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'configmap-reader' },
        subjects: [{ kind: 'ServiceAccount', name: 'reader', namespace: ns.name }],
      },
    });
    const tr = await core.createNamespacedServiceAccountToken({
      name: 'reader',
      namespace: ns.name,
      body: { spec: { audiences: [], expirationSeconds: 600 } },
    });
    const token = tr.status?.token;
    expect(token).toBeTruthy();
    const saConfig = new k8s.KubeConfig();
    const clusterInfo = kc.getCurrentCluster()!;
    saConfig.loadFromOptions({
      clusters: [clusterInfo],
      users: [{ name: 'reader', token: token! }],
      contexts: [{ name: 'reader', cluster: clusterInfo.name, user: 'reader' }],
      currentContext: 'reader',
    });
    const review = await saConfig.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: {} });
    expect(review.status?.userInfo?.username).toBe(`system:serviceaccount:${ns.name}:reader`);
    const saCore = saConfig.makeApiClient(k8s.CoreV1Api);
    const list = await eventually('the Role to take effect', () =>
      saCore.listNamespacedConfigMap({ namespace: ns.name }),
    );
    expect(Array.isArray(list.items)).toBe(true);
    const denied = await saCore
      .createNamespacedConfigMap({ namespace: ns.name, body: { metadata: { name: 'not-allowed' } } })
      .then(
        () => undefined,
        (e: unknown) => e,
      );
    expect(statusCode(denied)).toBe(403);
    const secrets = await saCore.listNamespacedSecret({ namespace: ns.name }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(statusCode(secrets)).toBe(403);
  });
});
