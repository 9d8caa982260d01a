// One operator replica, start to finish: every replica serves health and
// metrics and keeps its caches warm; only the elected leader reconciles.
//
// Shutdown (the signal passed in aborts, e.g. on SIGTERM): /readyz turns red,
// the elector aborts the leadership, the controller's lead() returns, and only
// then is the Lease released — so a standby takes over at once and can never
// overlap with our last write. Losing the lease without a shutdown aborts the
// same leadership signal; the replica becomes a standby and campaigns again.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { LeaderElector, makeIdentity, resolveTimings, type Leadership } from '../election/index.ts';
import { PodEvidence } from '../election/pod-evidence.ts';
import { restClientMetrics } from '../kube/client-metrics.ts';
import type { OperatorConfig } from '../config/config.ts';
import { createLogger } from '../log/logger.ts';
import { createRegistry, selfFencedWrites } from '../metrics/registry.ts';
import { HeapCompactor } from '../runtime/heap-compactor.ts';
import type { TokenDomain } from '../controller/rules/token-domain.ts';
import { startServer, type HealthServer } from '../server/server.ts';
import { FENCES_ONLY_MESSAGE, type FencesOnly } from './chaos-hook.ts';

/** What the operator needs from the SingletonJob controller. */
export interface GuardedController {
  /** Starts the informers (on every replica); resolves once they are stopped by `signal`. */
  startCaches(signal: AbortSignal): Promise<void>;
  /** True once every informer has listed. */
  hasSynced(): boolean;
  /** Reconciles until leadership.signal aborts; must return promptly after that. */
  lead(leadership: Leadership): Promise<void>;
  /** Before a term's first write: whether its term and the objects' resourceVersions share one counter (src/controller/rules/token-domain.ts). */
  checkTokenDomain?(term: number): Promise<TokenDomain>;
  /** Readiness: red while a term was refused by checkTokenDomain. */
  tokenDomainReady?(): TokenDomain;
}

export interface ControllerContext {
  kubeConfig: k8s.KubeConfig;
  /** Namespaces to reconcile; undefined means all. */
  namespaces: string[] | undefined;
  logger: Logger;
  registry: Registry;
  /** This installation's Lease (recorded in status so installations can tell whose object it is). */
  lease: { namespace: string; name: string; durationMs: number };
  /** --max-concurrent-reconciles. */
  workers: number;
}

export type ControllerFactory = (context: ControllerContext) => GuardedController;

export const ExitCode = {
  /** Stopped by a signal, after a graceful shutdown. */
  ok: 0,
  /** A fatal error (for example the health server cannot listen). */
  failed: 1,
  /** Invalid flags, environment or kubeconfig. */
  invalidConfiguration: 2,
  /** The graceful shutdown took longer than --shutdown-timeout. */
  shutdownTimedOut: 3,
} as const;

export interface RunOptions {
  config: OperatorConfig;
  createController: ControllerFactory;
  /** Aborting it starts the graceful shutdown. */
  signal: AbortSignal;
  version: string;
  /** Called once the HTTP server listens (tests read the port). */
  onListening?: (port: number) => void;
  /** Replaces stdout logging (tests). */
  logger?: Logger;
  /** Test-only: the chaos suite's no-election mode (chaos-hook.ts); never set in production. */
  fencesOnly?: FencesOnly;
}

export function loadKubeConfig(file: string | undefined): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  if (!kc.getCurrentCluster())
    throw new Error(
      file
        ? `kubeconfig ${file} has no current cluster`
        : 'no kubeconfig found: not in a cluster, and neither $KUBECONFIG nor ~/.kube/config is usable',
    );
  return kc;
}

function waitUntil(predicate: () => boolean, signal: AbortSignal, intervalMs = 100): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (predicate() || signal.aborted) {
        clearInterval(timer);
        signal.removeEventListener('abort', check);
        resolve();
      }
    };
    const timer = setInterval(check, intervalMs);
    signal.addEventListener('abort', check);
    check();
  });
}

/** Runs one replica until `signal` aborts; resolves with the process exit code. */
export async function runOperator(options: RunOptions): Promise<number> {
  const { config } = options;
  const identity = config.identity ?? makeIdentity(config.podName);
  // The elector binds identity (and its Lease) itself; everything else logs through `logger`.
  const rootLogger = options.logger ?? createLogger({ level: config.logLevel });
  const logger = rootLogger.child({ identity });
  const registry = createRegistry({ version: options.version, identity });
  const selfFenced = selfFencedWrites(registry);
  const leaseRef = `${config.leaseNamespace}/${config.leaseName}`;

  let kubeConfig: k8s.KubeConfig;
  try {
    kubeConfig = loadKubeConfig(config.kubeconfig);
  } catch (err) {
    logger.fatal({ err }, 'Failed to load the kubeconfig');
    return ExitCode.invalidConfiguration;
  }
  const namespaces = config.watchNamespaces.length > 0 ? config.watchNamespaces : undefined;
  const controller = options.createController({
    kubeConfig,
    namespaces,
    logger,
    registry,
    lease: { namespace: config.leaseNamespace, name: config.leaseName, durationMs: config.leaseDurationMs },
    workers: config.maxConcurrentReconciles,
  });
  let shuttingDown = options.signal.aborted;
  // The kubelet's word on the Lease holder (its replica Pods' status): crash
  // failover in about a second instead of a lease (election/evidence.ts).
  const evidence = config.replicaPodSelector
    ? new PodEvidence({
        kubeConfig,
        namespace: config.leaseNamespace,
        labelSelector: config.replicaPodSelector,
        container: config.replicaContainer,
        logger,
        requestTimeoutMs: resolveTimings(config).requestTimeoutMs,
        metrics: restClientMetrics(registry),
      })
    : undefined;
  /** No-election mode: the signal of the current rotation (the loop around elector.run below). */
  let rotation: { signal: AbortSignal } | undefined;

  const elector = new LeaderElector(
    {
      kubeConfig,
      namespace: config.leaseNamespace,
      name: config.leaseName,
      identity,
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      releaseOnCancel: true,
      logger: rootLogger,
      registry,
      ...(evidence ? { evidence } : {}),
    },
    {
      onStartedLeading: async (leadership) => {
        // A new leader acts on warm caches only (standbys normally have them already).
        if (!controller.hasSynced()) {
          logger.info({ term: leadership.term }, 'Waiting for caches to sync before reconciling');
          await waitUntil(() => controller.hasSynced(), leadership.signal);
        }
        if (leadership.signal.aborted) return;
        const domain = (await controller.checkTokenDomain?.(leadership.term)) ?? { ok: true };
        if (!domain.ok) {
          // Holding the Lease and doing nothing: another replica of this cluster would find the same.
          logger.error({ term: leadership.term }, `Not reconciling: ${domain.reason}`);
          await waitUntil(() => false, leadership.signal);
          return;
        }
        logger.info({ leader: identity, term: leadership.term }, 'Started reconciling');
        await controller.lead(
          rotation
            ? // No self-fencing: the work runs on with its term until the rotation ends it, Lease lost or not.
              { ...leadership, signal: rotation.signal, assertValid: () => undefined }
            : {
                ...leadership,
                assertValid: () => {
                  try {
                    leadership.assertValid();
                  } catch (err) {
                    selfFenced.inc();
                    throw err;
                  }
                },
              },
        );
        logger.info({ leader: identity, term: leadership.term }, 'Stopped reconciling');
      },
    },
  );

  let server: HealthServer;
  try {
    server = await startServer({
      host: config.httpHost,
      port: config.httpPort,
      registry,
      logger,
      liveness: [{ name: 'leader-election', check: () => elector.healthy() }],
      readiness: [
        {
          name: 'informer-sync',
          check: () => (controller.hasSynced() ? { ok: true } : { ok: false, reason: 'caches have not synced yet' }),
        },
        { name: 'shutdown', check: () => (shuttingDown ? { ok: false, reason: 'shutting down' } : { ok: true }) },
        // Red while another replica writes the Lease under our --identity (this one refuses to lead meanwhile).
        { name: 'leader-election', check: () => elector.ready() },
        { name: 'token-domain', check: () => controller.tokenDomainReady?.() ?? { ok: true } },
      ],
    });
  } catch (err) {
    logger.fatal(
      { err, host: config.httpHost, port: config.httpPort },
      'Failed to start the health and metrics server',
    );
    return ExitCode.failed;
  }
  options.onListening?.(server.port);

  logger.info(
    {
      version: options.version,
      lease: leaseRef,
      namespaces: namespaces ?? 'all',
      leaseDurationMs: config.leaseDurationMs,
      renewDeadlineMs: config.renewDeadlineMs,
      retryPeriodMs: config.retryPeriodMs,
      failoverEvidence: config.replicaPodSelector
        ? { pods: config.replicaPodSelector, container: config.replicaContainer }
        : 'none (a standby waits for the lease to expire)',
    },
    'Started singleton-operator',
  );

  const stopCaches = new AbortController();
  const onShutdown = () => {
    shuttingDown = true;
    logger.info(
      { signal: String(options.signal.reason) },
      'Shutting down: stopping guarded work, then releasing the Lease',
    );
  };
  options.signal.addEventListener('abort', onShutdown, { once: true });

  evidence?.start(stopCaches.signal);
  const caches = controller.startCaches(stopCaches.signal).catch((err: unknown) => {
    logger.error({ err }, 'Caches stopped with an error');
  });
  // A leader never pauses itself for a forced GC longer than half its stall threshold (it would fence itself); a standby may.
  const compactor = new HeapCompactor({
    logger,
    registry,
    pauseBudgetMs: () => (elector.isLeader() ? elector.settings.stallThresholdMs / 2 : Infinity),
  });
  compactor.start();
  let code: number = ExitCode.ok;
  try {
    if (options.fencesOnly) {
      // Test-only (chaos-hook.ts): lead for a random while, give the Lease up,
      // take it again with a new term; the work stops only with its rotation.
      const [min, max] = options.fencesOnly.rotateMs;
      logger.warn({ rotateMs: options.fencesOnly.rotateMs }, FENCES_ONLY_MESSAGE);
      while (!options.signal.aborted) {
        const signal = AbortSignal.any([
          options.signal,
          AbortSignal.timeout(Math.round(min + Math.random() * (max - min))),
        ]);
        rotation = { signal };
        await elector.run(signal);
      }
    } else {
      await elector.run(options.signal);
    }
  } catch (err) {
    logger.fatal({ err }, 'Leader election failed');
    code = ExitCode.failed;
  }
  options.signal.removeEventListener('abort', onShutdown);
  shuttingDown = true;
  compactor.stop();
  stopCaches.abort();
  await caches;
  await server.close();
  logger.info({ code }, 'Stopped singleton-operator');
  return code;
}
