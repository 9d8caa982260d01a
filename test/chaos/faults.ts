// The fault injectors. Each one injects its fault, undoes it ("heals"), and
// says what it did; the harness then waits for recovery. Durations that must
// outlast the Lease are derived from the replicas' lease duration.
import type * as k8s from '@kubernetes/client-node';
import type { ControlPlane } from '../controlplane/controlplane.ts';
import { sleep } from '../controlplane/process.ts';
import { actions } from './actions.ts';
import type { FaultKind, FaultRecord, History, Installation } from './history.ts';
import type { HttpFaultMode } from './http-fault-proxy.ts';
import { faketimeLibrary, type Replica, type ReplicaTimings } from './replicas.ts';
import type { Rng } from './rng.ts';

export interface FaultContext {
  cp: ControlPlane;
  replicas: Replica[];
  rng: Rng;
  timings: ReplicaTimings;
  /** The replica holding the Lease, if any is known and running. */
  leader(): Promise<Replica | undefined>;
  /**
   * Resolves with the replica that logged the reserve hook, already SIGSTOPped
   * ('stop', the default) or with its outgoing requests held ('hold'), or
   * undefined on timeout.
   */
  stopAtReserveHook(timeoutMs: number, mode?: 'stop' | 'hold'): Promise<Replica | undefined>;
  log(line: string): void;
  /** clock-skew may hand leadership to the skewed replica (else it stays a standby). */
  skewedLeader: boolean;
  /** Admin access straight to the API server (never through a replica's proxies). */
  kc: k8s.KubeConfig;
  /** The namespace under test. */
  namespace: string;
  /** The history as recorded so far (the actions wait on runs the recorder saw). */
  history: History;
  /** Every installation, this one first (its `replicas` are the ones above, plus spare identities). */
  installations: Installation[];
  /** Starts one more replica process (another installation's, or a duplicate identity); the caller shuts it down. */
  extraReplica(o: { name: string; leaseNamespace: string; identity?: string }): Promise<Replica>;
  /** The scheduled SingletonJobs of the workload and their period (ms). */
  scheduled: string[];
  schedules: Record<string, number>;
}

export type Injection = Omit<FaultRecord, 'kind' | 'recoveredAt'>;

type Injector = (ctx: FaultContext) => Promise<Injection>;

const skip = (target: string, why: string): Injection => ({
  target,
  detail: why,
  startedAt: Date.now(),
  healedAt: Date.now(),
  skipped: why,
});

/** Longer than the Lease: the pause or partition must let a standby take over. */
const beyondLease = (ctx: FaultContext) => ctx.timings.leaseDurationMs + ctx.rng.int(1000, 4000);

async function someReplica(ctx: FaultContext, preferLeader: number): Promise<Replica> {
  const leader = await ctx.leader();
  if (leader && ctx.rng.next() < preferLeader) return leader;
  const others = ctx.replicas.filter((r) => r !== leader && r.running);
  return others.length > 0 ? ctx.rng.pick(others) : ctx.rng.pick(ctx.replicas);
}

export const injectors: Record<FaultKind, Injector> = {
  'kill-leader': async (ctx) => {
    const leader = await ctx.leader();
    if (!leader) return skip('-', 'no leader to kill');
    const startedAt = Date.now();
    await leader.kill();
    // A Deployment would start a new Pod right away; so does the harness.
    leader.start();
    return { target: leader.name, detail: 'SIGKILL, restarted at once', startedAt, healedAt: Date.now() };
  },

  'pause-leader': async (ctx) => {
    const leader = await ctx.leader();
    if (!leader) return skip('-', 'no leader to pause');
    const ms = beyondLease(ctx);
    const startedAt = Date.now();
    leader.signal('SIGSTOP');
    await sleep(ms);
    leader.signal('SIGCONT');
    return { target: leader.name, detail: `SIGSTOP for ${(ms / 1000).toFixed(1)} s`, startedAt, healedAt: Date.now() };
  },

  'pause-after-reserve': async (ctx) => {
    const replica = await ctx.stopAtReserveHook(30_000);
    if (!replica) return skip('-', 'no run was reserved within 30 s (hook never fired)');
    const startedAt = Date.now();
    const ms = beyondLease(ctx);
    await sleep(ms);
    replica.signal('SIGCONT');
    return {
      target: replica.name,
      detail: `SIGSTOP between reserve and Job create, for ${(ms / 1000).toFixed(1)} s`,
      startedAt,
      healedAt: Date.now(),
    };
  },

  'apiserver-restart': async (ctx) => {
    const down = ctx.rng.int(500, 4000);
    const startedAt = Date.now();
    await ctx.cp.stopComponent('kube-apiserver', true);
    await sleep(down);
    await ctx.cp.startComponent('kube-apiserver');
    return {
      target: 'kube-apiserver',
      detail: `SIGKILL, down ${(down / 1000).toFixed(1)} s + startup`,
      startedAt,
      healedAt: Date.now(),
    };
  },

  'etcd-restart': async (ctx) => {
    const down = ctx.rng.int(500, 4000);
    const startedAt = Date.now();
    await ctx.cp.stopComponent('etcd');
    await sleep(down);
    await ctx.cp.startComponent('etcd');
    return { target: 'etcd', detail: `SIGTERM, down ${(down / 1000).toFixed(1)} s`, startedAt, healedAt: Date.now() };
  },

  partition: async (ctx) => {
    const target = await someReplica(ctx, 0.7);
    const ms = beyondLease(ctx);
    const startedAt = Date.now();
    target.tcp.blackhole();
    await sleep(ms);
    target.tcp.heal();
    return {
      target: target.name,
      detail: `blackholed ${(ms / 1000).toFixed(1)} s (held bytes delivered on heal)`,
      startedAt,
      healedAt: Date.now(),
    };
  },

  'slow-link': async (ctx) => {
    const target = await someReplica(ctx, 0.7);
    const delay = ctx.rng.int(200, 1500);
    const ms = ctx.rng.int(8000, 15000);
    const startedAt = Date.now();
    target.tcp.delay(delay);
    await sleep(ms);
    target.tcp.heal();
    return {
      target: target.name,
      detail: `+${delay} ms each way for ${(ms / 1000).toFixed(1)} s`,
      startedAt,
      healedAt: Date.now(),
    };
  },

  'clock-skew': async (ctx) => {
    if (!faketimeLibrary()) return skip('-', 'faketime is not installed (apt-get install -y faketime)');
    // Skew a standby (it must not judge the leader's Lease expired), then —
    // when the profile allows — hand leadership over gracefully so the skewed
    // replica may win and schedule on its own wall clock. Only forward skew: backward by minutes would put the
    // test CA's fresh certificates in the future and fail TLS, not election.
    const leader = await ctx.leader();
    const standbys = ctx.replicas.filter((r) => r !== leader);
    const target = ctx.rng.pick(standbys);
    const skew = ctx.rng.int(120, 300);
    const startedAt = Date.now();
    await target.restart(skew);
    await sleep(5000);
    const handover = ctx.skewedLeader && leader !== undefined && ctx.rng.next() < 0.7;
    if (handover) await leader.restart(0);
    await sleep(ctx.rng.int(8000, 15000));
    await target.restart(0);
    return {
      target: target.name,
      detail: `wall clock +${skew} s${handover ? `, leader ${leader.name} handed over` : ' (standby)'}`,
      startedAt,
      healedAt: Date.now(),
    };
  },

  'api-errors': async (ctx) => {
    const target = await someReplica(ctx, 0.8);
    const mode = ctx.rng.pick<HttpFaultMode>(['throttle', 'unavailable', 'lost-response']);
    const rate = ctx.rng.int(30, 60) / 100;
    const ms = ctx.rng.int(8000, 15000);
    const before = { ...target.http.injected };
    const startedAt = Date.now();
    target.http.activate(mode, rate);
    await sleep(ms);
    target.http.heal();
    const n = target.http.injected[mode] - before[mode];
    const what =
      mode === 'throttle'
        ? '429 + Retry-After'
        : mode === 'unavailable'
          ? '500/503 before applying'
          : '500/504 after applying';
    return {
      target: target.name,
      detail: `${what} on ${Math.round(rate * 100)}% of requests for ${(ms / 1000).toFixed(1)} s (${n} injected)`,
      startedAt,
      healedAt: Date.now(),
    };
  },

  ...actions,
};

export const ALL_FAULTS = Object.keys(injectors) as FaultKind[];
