// The SingletonJob controller: warm caches on every replica, reconciling only
// while this replica leads.
//
// Wiring (src/main.ts / src/operator/run.ts):
//
//   const controller = new SingletonJobController({ kubeConfig, namespaces, logger, registry });
//   const caches = controller.startCaches(stop.signal); // every replica; resolves once `stop` aborts
//   controller.hasSynced();                              // readiness: every informer has listed
//   await controller.lead(leadership);                   // leader only; resolves after
//                                                        // leadership.signal aborted and all
//                                                        // in-flight work has stopped
//
// Every write goes through clients whose beforeWrite hook runs
// leadership.assertValid() synchronously right before the request leaves, so
// a deposed (paused, partitioned) leader stops before its first stale write.
import * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Registry } from 'prom-client';
import { GROUP, PLURAL, VERSION, Keys } from '../api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../api/v1alpha1/singletonjob.ts';
import type { Leadership } from '../election/index.ts';
import { makeClient } from '../kube/client.ts';
import { Informer, MultiInformer } from '../kube/informer.ts';
import { objectKey } from '../kube/object-key.ts';
import { describeError, isNamespaceTerminating } from '../kube/errors.ts';
import { judgeTokenDomain, type TokenDomain } from './rules/token-domain.ts';
import type { ListPage } from '../kube/informer.ts';
import { EventRecorder, eventMetrics } from './cluster/events.ts';
import { DEFAULT_CONCURRENT_RECONCILES } from '../config/config.ts';
import type { EventMetrics } from './cluster/events.ts';
import { jobsFinishAfterPods, readServerVersion } from '../kube/server-version.ts';
import { CONTROLLER_NAME, controllerMetrics } from './metrics.ts';
import { objectMetrics } from './object-metrics.ts';
import { restClientMetrics } from '../kube/client-metrics.ts';
import type { RequestMetrics } from '../kube/client-metrics.ts';
import type { ControllerMetrics } from './metrics.ts';
import { ServerClock } from '../kube/server-clock.ts';
import { projectJob, sjKeyOfJob } from './rules/jobs.ts';
import { LostJobs } from './cluster/lost-jobs.ts';
import { Reconciler } from './pass/reconciler.ts';
import { KubeJobControl, KubePodControl, KubeStatusStore } from './cluster/kube.ts';
import { KubeKueue } from './cluster/kueue.ts';
import { MutationCache } from '../kube/mutation-cache.ts';
import type { ReconcileHooks } from './cluster/ports.ts';
import { KubeLeaseLiveness } from './cluster/lease-liveness.ts';
import type { LeaseRef } from './cluster/lease-liveness.ts';
import { WorkQueue } from '../kube/workqueue.ts';

/** Logged once per leadership when every object known at the takeover has had one pass (the benchmark waits for it). */
export const FIRST_PASS_MESSAGE = 'Reconciled every SingletonJob once since taking over';

export interface ControllerOptions {
  kubeConfig: k8s.KubeConfig;
  /** Namespaces to watch and reconcile; undefined or empty = all. */
  namespaces?: string[] | undefined;
  logger: Logger;
  registry?: Registry;
  /** Parallel reconciles (distinct keys). */
  workers?: number;
  requestTimeoutMs?: number;
  /** Injected clock (tests). */
  now?: () => Date;
  /**
   * This installation's Lease: recorded in every status write, so two
   * installations claiming one object can tell whose it is (cluster/lease-liveness.ts).
   */
  lease?: LeaseRef & { durationMs: number };
  /** First retry delay of a failed attempt; default 10 s. */
  retryBackoffMs?: number;
  /** Test hooks (the chaos suite's pause after a reservation); none in production. */
  hooks?: ReconcileHooks;
}

export class SingletonJobController {
  private readonly o: ControllerOptions;
  private readonly sjs: MultiInformer<SingletonJob>;
  private readonly jobs: MultiInformer<k8s.V1Job>;
  private readonly mutations: MutationCache<SingletonJob>;
  private readonly metrics: ControllerMetrics;
  private readonly requestMetrics: RequestMetrics;
  /** The API server's clock (from response Date headers): schedules never follow this node's wall clock. */
  readonly clock: ServerClock;
  private readonly probe: () => Promise<unknown>;
  private tokenDomain: TokenDomain = { ok: true };
  private queue: WorkQueue | undefined;
  private reconciler: Reconciler | undefined;
  private leading = false;
  /** From the API server's version, read at the first leadership (see kube/server-version.ts). */
  private finishAfterPods: boolean | undefined;
  private readonly eventMetrics: EventMetrics;
  /** Jobs deleted while their Pods might run, per SingletonJob namespace/name, until a live Pod list (lost-jobs.ts). */
  private readonly lostJobs = new LostJobs();

  constructor(options: ControllerOptions) {
    this.o = options;
    const registry = options.registry ?? new Registry();
    this.metrics = controllerMetrics(registry);
    this.requestMetrics = restClientMetrics(registry);
    this.eventMetrics = eventMetrics(registry);
    const kc = options.kubeConfig;
    const timeoutMs = options.requestTimeoutMs ?? 10_000;
    this.clock = new ServerClock();
    const onResponse = (headers: Record<string, string>) => this.clock.observe(headers['date']);
    const custom = makeClient(kc, k8s.CustomObjectsApi, { timeoutMs, onResponse, metrics: this.requestMetrics });
    const batch = makeClient(kc, k8s.BatchV1Api, { timeoutMs, onResponse, metrics: this.requestMetrics });
    const ns0 = options.namespaces?.[0];
    this.probe = () =>
      ns0
        ? custom.listNamespacedCustomObject({
            group: GROUP,
            version: VERSION,
            plural: PLURAL,
            namespace: ns0,
            limit: 1,
          })
        : custom.listClusterCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, limit: 1 });
    const logger = options.logger;
    const scopes: (string | undefined)[] = options.namespaces?.length ? options.namespaces : [undefined];
    this.sjs = new MultiInformer(
      scopes.map(
        (ns) =>
          new Informer<SingletonJob>({
            kubeConfig: kc,
            logger,
            path: ns ? `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${PLURAL}` : `/apis/${GROUP}/${VERSION}/${PLURAL}`,
            list: async (page) =>
              (ns
                ? await custom.listNamespacedCustomObject({
                    group: GROUP,
                    version: VERSION,
                    plural: PLURAL,
                    namespace: ns,
                    ...page,
                  })
                : await custom.listClusterCustomObject({
                    group: GROUP,
                    version: VERSION,
                    plural: PLURAL,
                    ...page,
                  })) as ListPage<SingletonJob>,
          }),
      ),
    );
    // Only Jobs we created carry the owner-uid label; the cache holds nothing else.
    this.jobs = new MultiInformer(
      scopes.map(
        (ns) =>
          new Informer<k8s.V1Job>({
            kubeConfig: kc,
            logger,
            labelSelector: Keys.ownerUid,
            transform: projectJob,
            // By the SingletonJob's namespace/name, not its UID: a deleted predecessor's (orphaned) Jobs are found too.
            indexBy: sjKeyOfJob,
            path: ns ? `/apis/batch/v1/namespaces/${ns}/jobs` : '/apis/batch/v1/jobs',
            list: async (page) =>
              ns
                ? await batch.listNamespacedJob({ namespace: ns, ...page })
                : await batch.listJobForAllNamespaces(page),
          }),
      ),
    );
    objectMetrics(registry, { list: () => this.sjs.list(), exporting: () => this.leading });
    // Our own status writes, until the informer shows them (read-your-writes).
    this.mutations = new MutationCache(this.sjs);
    // A Job's delete is remembered for the next start's Pod check (its Pods may outlive it), before its object is enqueued.
    this.lostJobs.follow(this.jobs);
    // Event handlers only enqueue.
    this.sjs.on((_type, obj) => this.queue?.add(objectKey(obj)));
    this.jobs.on((_type, job) => {
      const key = sjKeyOfJob(job);
      if (key) this.queue?.add(key);
    });
  }

  /** Starts the informers (on every replica, before and regardless of leadership); resolves once `signal` aborts. */
  async startCaches(signal: AbortSignal): Promise<void> {
    const synced = Promise.all([this.sjs.start(signal), this.jobs.start(signal)]);
    synced.catch(() => undefined);
    if (!signal.aborted)
      await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  }

  hasSynced(): boolean {
    return this.sjs.hasSynced() && this.jobs.hasSynced();
  }

  /**
   * Before a term's first write: do the term and the SingletonJobs'
   * resourceVersions share one counter (token-domain.ts)? A list that fails
   * proves nothing either way and does not hold the leader up.
   */
  async checkTokenDomain(term: number): Promise<TokenDomain> {
    let listed: { metadata?: { resourceVersion?: string } };
    try {
      listed = (await this.probe()) as typeof listed;
    } catch (err) {
      this.o.logger.warn(
        { term, err: describeError(err) },
        'Could not list SingletonJobs to compare their revision with the term',
      );
      return { ok: true };
    }
    this.tokenDomain = judgeTokenDomain(term, listed.metadata?.resourceVersion);
    return this.tokenDomain;
  }

  /** Readiness: red while the last term was refused for a token domain it cannot fence (checkTokenDomain). */
  tokenDomainReady(): TokenDomain {
    return this.tokenDomain;
  }

  /**
   * Reconciles every SingletonJob while `leadership` holds. Resolves after
   * leadership.signal aborted and every in-flight reconcile has returned.
   * Requires synced caches (the operator waits for hasSynced() first).
   */
  async lead(leadership: Leadership): Promise<void> {
    if (this.leading) throw new Error('lead() is already running');
    if (!this.hasSynced()) throw new Error('lead() needs synced caches: wait for hasSynced()');
    if (leadership.signal.aborted) return;
    this.leading = true;
    const { kubeConfig: kc, logger } = this.o;
    const log = logger.child({ leader: leadership.identity, term: leadership.term });
    const guarded = {
      timeoutMs: this.o.requestTimeoutMs ?? 10_000,
      beforeWrite: () => leadership.assertValid(),
      userAgent: 'singleton-operator/controller',
      onResponse: (headers: Record<string, string>) => this.clock.observe(headers['date']),
      metrics: this.requestMetrics,
    };
    if (!this.o.now && !this.clock.hasSample(60_000)) {
      // No recent server time: sample it before the first schedule decision.
      try {
        await this.probe();
      } catch (err) {
        log.warn(
          { err: describeError(err) },
          'Could not read the API server clock yet; using the local clock until a response arrives',
        );
      }
      if (leadership.signal.aborted) {
        this.leading = false;
        return;
      }
    }
    if (this.finishAfterPods === undefined) {
      try {
        const version = await readServerVersion(
          makeClient(kc, k8s.VersionApi, { timeoutMs: guarded.timeoutMs, metrics: this.requestMetrics }),
        );
        this.finishAfterPods = jobsFinishAfterPods(version);
        log.info(
          { server: version?.gitVersion, jobsFinishAfterPods: this.finishAfterPods },
          'Read the API server version',
        );
      } catch (err) {
        log.warn(
          { err: describeError(err) },
          'Could not read the API server version: every run end and start lists Pods live',
        );
      }
    }
    const core = makeClient(kc, k8s.CoreV1Api, guarded);
    // Backoff capped well below a schedule period: a leader retries within seconds after an outage.
    const work = new WorkQueue({ maxDelayMs: 10_000, metrics: this.metrics.queue });
    let inFlight = 0;
    // Events wait while reconcile work does (see events.ts).
    const events = new EventRecorder(makeClient(kc, k8s.EventsV1Api, guarded), log, leadership.identity, {
      busy: () => work.length > 0 || inFlight > 0,
      metrics: this.eventMetrics,
    });
    // Runs whose Job Kueue manages (the queue-name label): the operator is their AdmissionCheck controller (kueue.ts).
    const kueue = new KubeKueue(
      makeClient(kc, k8s.CustomObjectsApi, guarded),
      makeClient(kc, k8s.BatchV1Api, guarded),
      log,
      makeClient(kc, k8s.ApisApi, guarded),
    );
    const reconciler = new Reconciler({
      status: new KubeStatusStore(makeClient(kc, k8s.CustomObjectsApi, guarded), this.mutations),
      jobs: new KubeJobControl(makeClient(kc, k8s.BatchV1Api, guarded), core, this.jobs, this.lostJobs, kueue),
      kueue,
      pods: new KubePodControl(core),
      events,
      leadership,
      logger: log,
      metrics: this.metrics,
      now: this.o.now ?? (() => this.clock.now()),
      ...(this.o.lease && !this.o.hooks?.fencesOnly
        ? {
            lease: this.o.lease,
            leases: new KubeLeaseLiveness(
              makeClient(kc, k8s.CoordinationV1Api, { timeoutMs: guarded.timeoutMs, metrics: this.requestMetrics }),
              log,
            ),
          }
        : {}),
      ...(this.o.retryBackoffMs !== undefined ? { retryBackoffMs: this.o.retryBackoffMs } : {}),
      ...(this.o.hooks ? { hooks: this.o.hooks } : {}),
      jobsFinishAfterPods: this.finishAfterPods ?? false,
    });
    this.reconciler = reconciler;
    this.queue = work;
    const stop = () => work.shutDown();
    leadership.signal.addEventListener('abort', stop, { once: true });
    log.info(
      { objects: this.sjs.list().length, serverClockOffsetMs: Math.round(this.clock.offsetFromWallMs()) },
      'Started reconciling',
    );
    // "Resumed": every object known at the takeover has completed one pass
    // (made its decision, written what it had to). Reported once per term.
    const firstPass = new Set(this.sjs.list().map((sj) => objectKey(sj)));
    const total = firstPass.size;
    const leadingSince = performance.now();
    this.metrics.firstPassSeconds.reset();
    const reportFirstPass = () => {
      const seconds = (performance.now() - leadingSince) / 1000;
      this.metrics.firstPassSeconds.set(seconds);
      log.info({ objects: total, ms: Math.round(seconds * 1000) }, FIRST_PASS_MESSAGE);
    };
    const passed = (key: string) => {
      if (firstPass.delete(key) && firstPass.size === 0) reportFirstPass();
    };
    for (const key of firstPass) work.add(key);
    if (total === 0) reportFirstPass();

    const controller = CONTROLLER_NAME;
    /** When a namespace's deletion was last logged (monotonic ms): once per namespace, again only after a while. */
    const terminating = new Map<string, number>();
    const worker = async () => {
      for (;;) {
        await yieldToTimers();
        const key = await work.get();
        if (key === undefined) return;
        const started = performance.now();
        this.metrics.activeWorkers.inc({ controller });
        inFlight++;
        try {
          const result = await reconciler.reconcile(key);
          passed(key);
          work.forget(key);
          this.metrics.reconciles.inc({
            controller,
            result: result.requeueAfterMs !== undefined ? 'requeue_after' : 'success',
          });
          if (result.requeueAfterMs !== undefined) work.addAfter(key, result.requeueAfterMs);
        } catch (err) {
          if (leadership.signal.aborted) return;
          if (isNamespaceTerminating(err)) {
            // The namespace is being deleted: its objects go with it, and
            // nothing a retry does can help. Dropped from the queue (the
            // periodic resync looks again once a minute while the object
            // lingers); said once per namespace, not once per object and try.
            work.forget(key);
            const ns = key.slice(0, key.indexOf('/'));
            const last = terminating.get(ns);
            if (last === undefined || performance.now() - last > TERMINATING_LOG_EVERY_MS) {
              terminating.set(ns, performance.now());
              log.info(
                { namespace: ns, object: key },
                'Namespace is being deleted: its SingletonJobs are left alone until it is gone',
              );
            }
            continue;
          }
          this.metrics.reconciles.inc({ controller, result: 'error' });
          this.metrics.reconcileErrors.inc({ controller });
          log.warn({ object: key, err: describeError(err) }, 'Reconcile failed; retrying with backoff');
          work.addRateLimited(key);
        } finally {
          work.done(key);
          this.metrics.activeWorkers.dec({ controller });
          inFlight--;
          this.metrics.reconcileSeconds.observe({ controller }, (performance.now() - started) / 1000);
        }
      }
    };
    const workers = this.o.workers ?? DEFAULT_CONCURRENT_RECONCILES;
    this.metrics.maxConcurrentReconciles.set({ controller }, workers);
    try {
      await Promise.all(Array.from({ length: workers }, worker));
    } finally {
      leadership.signal.removeEventListener('abort', stop);
      if (this.queue === work) this.queue = undefined;
      events.stop();
      if (this.reconciler === reconciler) this.reconciler = undefined;
      this.leading = false;
      log.info('Stopped reconciling');
    }
  }
}

/**
 * Passes that need no request (most of them) resolve entirely in microtasks:
 * without a yield, 8 workers would run through the whole queue in one
 * macrotask and starve every timer — at 10,000 objects the elector's renew
 * timer fired so late that the leader (rightly) fenced itself for a stalled
 * event loop (bench/results/probes.md). Every worker yields to the event loop once a slice of
 * uninterrupted work has run this long.
 */
const SLICE_MS = 20;
/** A namespace being deleted is logged once, and again after this long if it still is. */
const TERMINATING_LOG_EVERY_MS = 10 * 60_000;
let sliceStart = performance.now();

async function yieldToTimers(): Promise<void> {
  if (performance.now() - sliceStart < SLICE_MS) return;
  await new Promise<void>((resolve) => setImmediate(resolve));
  sliceStart = performance.now();
}
