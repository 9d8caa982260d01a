// Kueue (sigs.k8s.io/kueue, the version test/tools/kueue pins) against the
// local control plane: its controller manager as a process of ours, its CRDs
// and webhook configurations from the module's own config/ folder, its
// webhooks served on a loopback port with a certificate from the harness CA.
//
// - Built like the other tools (test/tools/build.sh kueue), cached under
//   bin/kueue-<version>; resolveKueue says why it cannot be had (tests skip).
// - Internal cert management is off: the webhook server reads a serving cert
//   issued by the harness CA (pki.ts) for 127.0.0.1, and every webhook
//   configuration points at https://127.0.0.1:<port><path> with that CA as
//   its caBundle. Only 127.0.0.1 is dialled.
// - Only the batch/job integration and the kueue.x-k8s.io webhooks are
//   registered, and every namespaced webhook, like Kueue's own
//   managedJobsNamespaceSelector, matches only namespaces labelled
//   KUEUE_NAMESPACE_LABEL: the other test files' Jobs, which share the
//   control plane, never meet Kueue.
// - One Kueue at a time (the webhook configurations have fixed names); stop()
//   removes the webhook configurations and stops the process by its PID. The
//   CRDs stay (deleting them would wait on Workload finalizers Kueue removes).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { cacheDir, pinnedVersion, buildBinaries } from './binaries.ts';
import type { ControlPlane } from './controlplane.ts';
import { issueServingCert } from './pki.ts';
import { freePort, logTail, probe, startProcess, stopProcess, waitFor, type RunningProcess } from './process.ts';

export const KUEUE_NAMESPACE_LABEL = 'singleton.dev/kueue-test';
/**
 * The identity Kueue runs as: the user name of its controller manager's
 * ServiceAccount in Kueue's default install (the chart's kueue.serviceAccount),
 * by a client certificate, bound to cluster-admin — so that admission policies
 * see Kueue's writes as a cluster's would.
 */
export const KUEUE_USER = 'system:serviceaccount:kueue-system:kueue-controller-manager';
/** Where Kueue's own objects would live (its Configuration's namespace). */
export const KUEUE_NAMESPACE = 'kueue-system';

export interface KueueBinaries {
  version: string;
  kueue: string;
  /** The module's config/ folder (components/crd/bases, components/webhook/manifests.yaml). */
  config: string;
}

/** The Kueue binary and its config/, built on demand; `{ missing }` says why there is none (the tests skip with it). */
export function resolveKueue(build = true): KueueBinaries | { missing: string } {
  const version = pinnedVersion('kueue', 'sigs.k8s.io/kueue');
  const dir = path.join(cacheDir(), 'bin', `kueue-${version}`);
  const kueue = process.env.TEST_ASSET_KUEUE ?? path.join(dir, 'kueue');
  const config = process.env.TEST_ASSET_KUEUE_CONFIG ?? path.join(dir, 'config');
  const have = () => existsSync(kueue) && existsSync(path.join(config, 'components', 'crd', 'bases'));
  if (!have() && build) {
    try {
      buildBinaries(['kueue']);
    } catch (err) {
      return {
        missing: `Kueue ${version} could not be built (bash test/tools/build.sh kueue): ${(err as Error).message.split('\n')[0]}`,
      };
    }
  }
  if (!have())
    return {
      missing: `Kueue ${version} is not in ${dir}; run \`bash test/tools/build.sh kueue\` (or set TEST_ASSET_KUEUE and TEST_ASSET_KUEUE_CONFIG)`,
    };
  return { version, kueue, config };
}

export interface KueueOptions {
  /** Kueue's Configuration field: manage Jobs without the queue-name label too (in the labelled namespaces). */
  manageJobsWithoutQueueName?: boolean;
}

export interface RunningKueue {
  version: string;
  process: RunningProcess;
  stop(): Promise<void>;
}

const WEBHOOK_NAMES = { mutating: 'singleton-test-kueue-mutating', validating: 'singleton-test-kueue-validating' };

type Webhook = {
  name: string;
  rules: { apiGroups: string[]; resources: string[] }[];
  clientConfig: { service?: { path?: string }; url?: string; caBundle?: string };
  namespaceSelector?: unknown;
  [k: string]: unknown;
};

function kubectl(cp: ControlPlane, args: string[], input?: string): string {
  return execFileSync('kubectl', ['--kubeconfig', cp.state.kubeconfig, ...args], {
    encoding: 'utf8',
    input,
    stdio: ['pipe', 'pipe', 'pipe'],
    maxBuffer: 64 << 20,
  });
}

/** Starts Kueue against `cp`; resolves once its webhooks answer the API server. */
export async function startKueue(
  cp: ControlPlane,
  bins: KueueBinaries,
  options: KueueOptions = {},
): Promise<RunningKueue> {
  const dir = path.join(cp.state.dir, `kueue-${Date.now()}`);
  const certDir = path.join(dir, 'certs');
  mkdirSync(certDir, { recursive: true });
  const serving = issueServingCert(cp.state.pki, `kueue-webhook-${Date.now()}`, ['127.0.0.1'], ['localhost']);
  copyFileSync(serving.cert, path.join(certDir, 'tls.crt'));
  copyFileSync(serving.key, path.join(certDir, 'tls.key'));
  const [webhookPort, healthPort] = [await freePort(), await freePort()];

  // CRDs (server-side: some are larger than the client-side apply annotation allows).
  kubectl(cp, [
    'apply',
    '--server-side',
    '--force-conflicts',
    '--field-manager=singleton-tests',
    '-f',
    path.join(bins.config, 'components', 'crd', 'bases'),
  ]);
  kubectl(cp, [
    'wait',
    '--for=condition=Established',
    '--timeout=60s',
    '-f',
    path.join(bins.config, 'components', 'crd', 'bases'),
  ]);
  kubectl(
    cp,
    ['apply', '-f', '-'],
    kubectl(cp, ['create', 'namespace', KUEUE_NAMESPACE, '--dry-run=client', '-o', 'yaml']),
  );

  const configuration = {
    apiVersion: 'config.kueue.x-k8s.io/v1beta2',
    kind: 'Configuration',
    namespace: KUEUE_NAMESPACE,
    health: { healthProbeBindAddress: `127.0.0.1:${healthPort}` },
    metrics: { bindAddress: '0' },
    webhook: { port: webhookPort, host: '127.0.0.1', certDir },
    leaderElection: { leaderElect: false },
    internalCertManagement: { enable: false },
    manageJobsWithoutQueueName: options.manageJobsWithoutQueueName ?? false,
    managedJobsNamespaceSelector: { matchLabels: { [KUEUE_NAMESPACE_LABEL]: 'true' } },
    integrations: { frameworks: ['batch/job'] },
  };
  const configFile = path.join(dir, 'config.yaml');
  writeFileSync(configFile, YAML.stringify(configuration));

  // Without internal cert management Kueue also reads a metrics serving cert from a fixed path,
  // /etc/kueue/metrics/certs (even with metrics off). Rather than write to the host's /etc, Kueue
  // runs in a mount namespace of its own where /etc is an overlay adding that folder (the same
  // serving cert). `exec`: the PID started is Kueue's own.
  const etc = path.join(dir, 'etc');
  mkdirSync(path.join(etc, 'upper', 'kueue', 'metrics', 'certs'), { recursive: true });
  mkdirSync(path.join(etc, 'work'), { recursive: true });
  copyFileSync(serving.cert, path.join(etc, 'upper', 'kueue', 'metrics', 'certs', 'tls.crt'));
  copyFileSync(serving.key, path.join(etc, 'upper', 'kueue', 'metrics', 'certs', 'tls.key'));
  // Kueue's own identity (KUEUE_USER), with every permission its ClusterRole would give and more.
  kubectl(
    cp,
    ['apply', '-f', '-'],
    kubectl(cp, [
      'create',
      'clusterrolebinding',
      'singleton-test-kueue-admin',
      '--clusterrole=cluster-admin',
      `--user=${KUEUE_USER}`,
      '--dry-run=client',
      '-o',
      'yaml',
    ]),
  );
  const kueueKubeconfig = cp.kubeconfigFor(KUEUE_USER);
  const log = path.join(dir, 'kueue.log');
  const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const proc = startProcess({
    name: 'kueue',
    command: 'unshare',
    args: [
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      `mount -t overlay overlay -o lowerdir=/etc,upperdir=${q(path.join(etc, 'upper'))},workdir=${q(path.join(etc, 'work'))} /etc && ` +
        `exec ${q(bins.kueue)} --config=${q(configFile)} --feature-gates=VisibilityOnDemand=false --zap-log-level=2`,
    ],
    log,
    env: { KUBECONFIG: kueueKubeconfig },
  });
  let webhooksApplied = false;
  const stop = async () => {
    if (webhooksApplied) {
      kubectl(cp, ['delete', 'mutatingwebhookconfiguration', WEBHOOK_NAMES.mutating, '--ignore-not-found']);
      kubectl(cp, ['delete', 'validatingwebhookconfiguration', WEBHOOK_NAMES.validating, '--ignore-not-found']);
    }
    await stopProcess(proc.pid);
  };
  try {
    await waitFor(
      'kueue to be ready',
      async () => (await probe(`http://127.0.0.1:${healthPort}/readyz`).catch(() => ({ status: 0 }))).status === 200,
      proc,
      120_000,
    );

    // The webhook configurations of the module, for batch Jobs and Kueue's own kinds only, at our loopback port.
    const caBundle = readFileSync(cp.state.pki.caCert).toString('base64');
    const manifests = YAML.parseAllDocuments(
      readFileSync(path.join(bins.config, 'components', 'webhook', 'manifests.yaml'), 'utf8'),
    ).map((d) => d.toJSON() as { kind: string; metadata: { name: string }; webhooks: Webhook[] });
    const out = manifests.map((m) => ({
      ...m,
      metadata: { name: m.kind === 'MutatingWebhookConfiguration' ? WEBHOOK_NAMES.mutating : WEBHOOK_NAMES.validating },
      webhooks: m.webhooks
        .filter((w) => w.rules.every((r) => r.apiGroups.every((g) => g === 'batch' || g === 'kueue.x-k8s.io')))
        .map((w) => ({
          ...w,
          clientConfig: { url: `https://127.0.0.1:${webhookPort}${w.clientConfig.service?.path ?? ''}`, caBundle },
          namespaceSelector: { matchLabels: { [KUEUE_NAMESPACE_LABEL]: 'true' } },
        })),
    }));
    webhooksApplied = true;
    kubectl(
      cp,
      ['apply', '--server-side', '--force-conflicts', '--field-manager=singleton-tests', '-f', '-'],
      out.map((m) => YAML.stringify(m)).join('---\n'),
    );
    // Reachable from the API server: a dry-run create of a ResourceFlavor goes through Kueue's webhooks.
    await waitFor(
      "Kueue's webhooks to answer the API server",
      async () => {
        try {
          kubectl(
            cp,
            ['create', '--dry-run=server', '-f', '-'],
            YAML.stringify({
              apiVersion: 'kueue.x-k8s.io/v1beta2',
              kind: 'ResourceFlavor',
              metadata: { name: 'probe' },
            }),
          );
          return true;
        } catch {
          return false;
        }
      },
      proc,
      60_000,
    );
  } catch (err) {
    const tail = logTail(log, 30);
    await stop();
    throw new Error(`${(err as Error).message}\nkueue log (${log}):\n${tail}`);
  }
  return { version: bins.version, process: proc, stop };
}
