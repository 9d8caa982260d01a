// The operator as it is installed: authenticated as the chart's
// ServiceAccount, bound to exactly the Roles and ClusterRoles the chart
// renders (`helm template` of charts/singleton-operator, so the tests cannot
// drift from what users install), with `watchNamespaces` set (a Role per
// namespace) or unset (ClusterRoles). Tests that need more (creating
// namespaces, faults) keep their own admin client; only the operator runs
// with these credentials.
//
// Also: a log watcher. A permission the chart lacks shows up as a 403 the
// operator logs (it degrades or retries instead of crashing), so a test would
// pass while a user's cluster breaks. Every controller started here logs
// through `forbiddenWatch`, and `expectNoForbidden()` (called after each test
// by test/support/singletonjobs.ts) fails the test on any 403 it saw,
// unless the controller runs for a test about RBAC (`forbiddenExpected`).
import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import pino, { type Logger } from 'pino';
import YAML from 'yaml';
import { resolveHelm } from '../controlplane/binaries.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const CHART = path.join(root, 'charts', 'singleton-operator');
/** The chart's default release namespace in its README. */
export const OPERATOR_NAMESPACE = 'singleton-system';

/** `cluster`: watchNamespaces unset (ClusterRoles). `namespaced`: watchNamespaces = the controller's namespaces (a Role in each). */
export type RbacScope = 'cluster' | 'namespaced';

const RBAC_KINDS = new Set(['ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  [k: string]: unknown;
}

/**
 * The release name (and so the ServiceAccount's name) per scope: one
 * ServiceAccount per scope, so a namespaced test is never helped by the
 * ClusterRoleBinding of a cluster-wide one. Both contain the chart's name, so
 * the chart's fullname is the release name.
 */
export const releaseFor = (scope: RbacScope) =>
  scope === 'cluster' ? 'singleton-operator' : 'singleton-operator-namespaced';

/** Every manifest `helm template` renders for `release` in OPERATOR_NAMESPACE with these values (`--set`); helm's own message on a refusal. */
export function renderChart<M = Manifest>(release: string, values: string[] = []): M[] {
  const out = execFileSync(
    resolveHelm(),
    [
      'template',
      release,
      CHART,
      '--namespace',
      OPERATOR_NAMESPACE,
      '--kube-version',
      '1.36.3',
      ...values.flatMap((v) => ['--set', v]),
    ],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
  );
  return YAML.parseAllDocuments(out)
    .map((d) => d.toJSON() as M | null)
    .filter((m): m is M => !!m);
}

/** What `helm template` renders for the operator's own identity: its ServiceAccount and RBAC (not the aggregated user roles). */
export function renderedRbac(
  scope: RbacScope,
  watchNamespaces: string[] = [],
  release = releaseFor(scope),
  values: string[] = [],
): Manifest[] {
  return renderChart(release, [
    ...(scope === 'namespaced' ? [`watchNamespaces={${watchNamespaces.join(',')}}`] : []),
    ...values,
  ])
    .filter((m) => RBAC_KINDS.has(m.kind))
    .filter(
      (m) => !Object.keys(m.metadata.labels ?? {}).some((l) => l.startsWith('rbac.authorization.k8s.io/aggregate-to-')),
    );
}

function apply(adminKubeconfig: string, manifests: Manifest[]): void {
  execFileSync(
    'kubectl',
    [
      '--kubeconfig',
      adminKubeconfig,
      'apply',
      '--server-side',
      '--force-conflicts',
      '--field-manager=singleton-tests',
      '-f',
      '-',
    ],
    {
      input: manifests.map((m) => YAML.stringify(m)).join('---\n'),
      encoding: 'utf8',
      stdio: ['pipe', 'pipe', 'pipe'],
    },
  );
}

/**
 * A KubeConfig for the operator's ServiceAccount with the chart's RBAC for
 * `namespaces` applied (idempotent: server-side apply, so parallel test files
 * can share the cluster-wide objects). The token comes from the TokenRequest
 * API, as the kubelet gets it for a Pod.
 */
export async function installedKubeConfig(
  admin: k8s.KubeConfig,
  adminKubeconfig: string,
  scope: RbacScope,
  namespaces: string[],
  /** For tests about RBAC: another release name (its own ServiceAccount) and a change to the rendered rules. */
  variant?: { release: string; edit: (rules: k8s.V1PolicyRule[], kind: string) => k8s.V1PolicyRule[] },
  /** Chart values (`--set`) that change the RBAC, e.g. `kueue.enabled=true`. */
  values: string[] = [],
): Promise<k8s.KubeConfig> {
  const core = admin.makeApiClient(k8s.CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: OPERATOR_NAMESPACE } } }).catch((err: { code?: number }) => {
    if (err.code !== 409) throw err;
  });
  const manifests = renderedRbac(scope, namespaces, variant?.release, values);
  if (variant)
    for (const m of manifests)
      if (Array.isArray(m.rules)) m.rules = variant.edit(m.rules as k8s.V1PolicyRule[], m.kind);
  apply(adminKubeconfig, manifests);
  return serviceAccountKubeConfig(admin, OPERATOR_NAMESPACE, variant?.release ?? releaseFor(scope), 6 * 3600);
}

/** A ServiceAccount's identity on `admin`'s cluster, by a token from the TokenRequest API (as the kubelet gets it for a Pod). */
export async function serviceAccountKubeConfig(
  admin: k8s.KubeConfig,
  namespace: string,
  name: string,
  expirationSeconds = 600,
): Promise<k8s.KubeConfig> {
  const request = await admin
    .makeApiClient(k8s.CoreV1Api)
    .createNamespacedServiceAccountToken({ name, namespace, body: { spec: { expirationSeconds } } });
  const cluster = admin.getCurrentCluster()!;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [
      {
        name: cluster.name,
        server: cluster.server,
        caData: cluster.caData,
        caFile: cluster.caFile,
        skipTLSVerify: cluster.skipTLSVerify,
      },
    ],
    users: [{ name, token: request.status!.token }],
    contexts: [{ name, cluster: cluster.name, user: name }],
    currentContext: name,
  });
  return kc;
}

/** The API error texts that mean "the chart's RBAC does not allow this". */
const FORBIDDEN = /HTTP 403 Forbidden|is forbidden: User|"code":403/;

const seen: string[] = [];
const lines: string[] = [];

/** The log lines of the controllers started in this test file (the newest 10,000–20,000), parsed. */
export function controllerLogs(): Record<string, unknown>[] {
  return lines.map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * A logger whose lines are scanned for 403s (and printed when
 * SINGLETON_VERBOSE is set). `forbiddenExpected`: a controller of a test
 * about RBAC, run with less than the chart grants — its 403s are the point.
 */
export function forbiddenWatch(bindings: Record<string, unknown> = {}, forbiddenExpected = false): Logger {
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      const line = chunk.toString();
      lines.push(line);
      if (lines.length > 20_000) lines.splice(0, 10_000);
      // A terminating namespace refuses creates with 403 too; that is not RBAC.
      if (!forbiddenExpected && FORBIDDEN.test(line) && !/because it is being terminated/.test(line))
        seen.push(line.trim());
      if (process.env.SINGLETON_VERBOSE) process.stdout.write(line);
      done();
    },
  });
  return pino({ level: process.env.SINGLETON_VERBOSE ? 'debug' : 'info' }, sink).child(bindings);
}

/** The 403s logged since the last call (after each test); throws when there were any. */
export function expectNoForbidden(): void {
  const found = seen.splice(0);
  if (found.length) {
    throw new Error(
      `the operator logged ${found.length} HTTP 403 under the chart's RBAC (a permission the chart lacks, or a read that is not optional):\n${found.slice(0, 3).join('\n')}`,
    );
  }
}
