// Part (a): failover and idle API cost, ours vs client-go's leaderelection.
//
// Three electors of each kind run against the same control plane, each kind
// on its own Lease in namespace bench-failover, each elector under its own
// client-certificate identity so the audit log attributes every request.
// Rounds alternate between the kinds (and which kind goes first). A round
// signals the current holder (SIGTERM = graceful, SIGKILL = crash) and
// measures, from the audit log, the time from the signal to the first
// successful Lease write by another identity (stageTimestamp of that write:
// when the API server committed it). The signalled elector is then restarted
// under the same identity and becomes a standby again.
import * as k8s from '@kubernetes/client-node';
import path from 'node:path';
import type { ControlPlane } from '../test/controlplane/controlplane.ts';
import { AuditReader, isWrite, succeeded, uniqueRequests, type AuditEvent } from './lib/audit.ts';
import { Child, sleep } from './lib/proc.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { ElectorKind } from './electors.ts';

export const FAILOVER_NAMESPACE = 'bench-failover';

export interface FailoverOptions {
  gracefulRounds: number;
  crashRounds: number;
  idleWindowMs: number;
  logDir: string;
  log: (m: string) => void;
}

export interface RoundSample {
  kind: string;
  mode: 'graceful' | 'crash';
  round: number;
  /** Signal → successor's first committed Lease write (audit stageTimestamp). */
  takeoverMs: number;
  /** Signal → the successor's own started-leading line (self-reported). */
  selfReportedMs?: number;
  /** Graceful only: signal → the old leader's release write. */
  releaseMs?: number;
  from: string;
  to: string;
}

export interface IdleCost {
  kind: string;
  windowMs: number;
  leader: { identity: string; perMinute: number; verbs: Record<string, number> };
  standbys: Array<{ identity: string; perMinute: number; verbs: Record<string, number> }>;
  standbyPerMinute: number;
}

export interface KindResult {
  kind: string;
  label: string;
  graceful: Summary;
  crash: Summary;
  idle: IdleCost;
}

export interface FailoverResult {
  samples: RoundSample[];
  kinds: KindResult[];
  leaseDurationMs: number;
  notes: string[];
}

interface Group {
  kind: ElectorKind;
  lease: string;
  identities: string[];
  kubeconfigs: Map<string, string>;
  children: Map<string, Child>;
}

export async function runFailover(cp: ControlPlane, kinds: ElectorKind[], o: FailoverOptions): Promise<FailoverResult> {
  const kc = cp.kubeConfig();
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const coord = kc.makeApiClient(k8s.CoordinationV1Api);
  await core.createNamespace({ body: { metadata: { name: FAILOVER_NAMESPACE } } }).catch(() => undefined);
  const audit = new AuditReader(cp.state.auditLog);
  audit.skipToEnd();
  const leaseEvents: AuditEvent[] = [];
  const allEvents: AuditEvent[] = [];
  const pump = () => {
    for (const e of audit.readNew()) {
      if (e.namespace !== FAILOVER_NAMESPACE) continue;
      allEvents.push(e);
      if (e.resource === 'leases') leaseEvents.push(e);
    }
  };

  const groups: Group[] = kinds.map((kind) => {
    const identities = [1, 2, 3].map((i) => `bench-${kind.id}-${i}`);
    const kubeconfigs = new Map(identities.map((id) => [id, cp.kubeconfigFor(id, ['system:masters'])]));
    return { kind, lease: `bench-${kind.id}`, identities, kubeconfigs, children: new Map() };
  });
  const start = (g: Group, identity: string): Child => {
    const child = g.kind.spawn({
      identity,
      kubeconfig: g.kubeconfigs.get(identity)!,
      namespace: FAILOVER_NAMESPACE,
      lease: g.lease,
      log: path.join(o.logDir, `${identity}.log`),
    });
    g.children.set(identity, child);
    return child;
  };
  const holder = async (g: Group): Promise<string | undefined> => {
    try {
      const lease = await coord.readNamespacedLease({ name: g.lease, namespace: FAILOVER_NAMESPACE });
      return lease.spec?.holderIdentity || undefined;
    } catch {
      return undefined;
    }
  };
  const waitHolder = async (g: Group, timeoutMs: number): Promise<string> => {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const h = await holder(g);
      if (h && g.children.get(h)?.alive) return h;
      await sleep(200);
    }
    throw new Error(`${g.kind.label}: no live leader on Lease ${g.lease} after ${timeoutMs} ms`);
  };

  const samples: RoundSample[] = [];
  const notes: string[] = [];
  try {
    for (const g of groups) for (const id of g.identities) start(g, id);
    for (const g of groups) {
      const h = await waitHolder(g, 60_000);
      o.log(`${g.kind.label}: ${h} leads Lease ${FAILOVER_NAMESPACE}/${g.lease}`);
    }

    // Idle cost: every elector of both kinds running, nothing happening.
    await sleep(5000);
    const idleHolders = new Map<Group, string>();
    for (const g of groups) idleHolders.set(g, await waitHolder(g, 10_000));
    pump();
    const idleStart = Date.now();
    o.log(`idle window: ${Math.round(o.idleWindowMs / 1000)} s with ${groups.length * 3} electors running`);
    await sleep(o.idleWindowMs);
    const idleEnd = Date.now();
    pump();
    const idle = new Map<Group, IdleCost>();
    for (const g of groups) {
      const h = idleHolders.get(g)!;
      if ((await holder(g)) !== h) notes.push(`${g.kind.label}: the leader changed during the idle window`);
      const windowEvents = uniqueRequests(allEvents.filter((e) => e.received >= idleStart && e.received < idleEnd));
      const per = (id: string) => {
        const verbs: Record<string, number> = {};
        for (const e of windowEvents) if (e.user === id) verbs[e.verb] = (verbs[e.verb] ?? 0) + 1;
        const total = Object.values(verbs).reduce((a, b) => a + b, 0);
        return { identity: id, perMinute: (total * 60_000) / (idleEnd - idleStart), verbs };
      };
      const standbys = g.identities.filter((id) => id !== h).map(per);
      idle.set(g, {
        kind: g.kind.id,
        windowMs: idleEnd - idleStart,
        leader: per(h),
        standbys,
        standbyPerMinute: standbys.reduce((a, s) => a + s.perMinute, 0) / Math.max(1, standbys.length),
      });
    }

    // Failover rounds, alternating kinds and which kind goes first.
    const schedule: Array<'graceful' | 'crash'> = [
      ...Array<'graceful'>(o.gracefulRounds).fill('graceful'),
      ...Array<'crash'>(o.crashRounds).fill('crash'),
    ];
    for (let i = 0; i < schedule.length; i++) {
      const mode = schedule[i]!;
      const order = i % 2 === 0 ? groups : [...groups].reverse();
      for (const g of order) {
        // A random pause so the signal lands at a random point of the peers' poll cycle.
        await sleep(2500 + Math.random() * 2500);
        const sample = await round(g, mode, i);
        samples.push(sample);
        o.log(
          `${mode.padEnd(8)} #${String(i + 1).padStart(2)} ${g.kind.label.padEnd(10)} ${sample.from} → ${sample.to}: ` +
            `${Math.round(sample.takeoverMs)} ms (self-reported ${sample.selfReportedMs === undefined ? '–' : Math.round(sample.selfReportedMs)} ms` +
            `${sample.releaseMs === undefined ? '' : `, release ${Math.round(sample.releaseMs)} ms`})`,
        );
      }
    }

    const kindsOut: KindResult[] = groups.map((g) => ({
      kind: g.kind.id,
      label: g.kind.label,
      graceful: summarize(
        samples.filter((s) => s.kind === g.kind.id && s.mode === 'graceful').map((s) => s.takeoverMs),
      ),
      crash: summarize(samples.filter((s) => s.kind === g.kind.id && s.mode === 'crash').map((s) => s.takeoverMs)),
      idle: idle.get(g)!,
    }));
    return { samples, kinds: kindsOut, leaseDurationMs: 15_000, notes };
  } finally {
    await Promise.all(groups.flatMap((g) => [...g.children.values()].map((c) => c.stop(5000).then(() => c.close()))));
  }

  async function round(g: Group, mode: 'graceful' | 'crash', i: number): Promise<RoundSample> {
    const from = await waitHolder(g, 60_000);
    const victim = g.children.get(from)!;
    pump();
    const successors = g.identities.filter((id) => id !== from).map((id) => g.children.get(id)!);
    const marks = new Map(successors.map((c) => [c, c.events.length]));
    const t0 = victim.signal(mode === 'graceful' ? 'SIGTERM' : 'SIGKILL');
    const deadline = t0 + (mode === 'graceful' ? 30_000 : 60_000);
    let takeover: AuditEvent | undefined;
    while (!takeover) {
      if (Date.now() > deadline)
        throw new Error(
          `${g.kind.label} ${mode} round ${i + 1}: nobody took Lease ${g.lease} over within ${deadline - t0} ms`,
        );
      await sleep(50);
      pump();
      takeover = leaseEvents.find(
        (e) => e.name === g.lease && e.received >= t0 - 1 && e.user !== from && isWrite(e) && succeeded(e),
      );
    }
    const release =
      mode === 'graceful'
        ? leaseEvents.find(
            (e) => e.name === g.lease && e.received >= t0 - 1 && e.user === from && isWrite(e) && succeeded(e),
          )
        : undefined;
    const successor = g.children.get(takeover.user);
    let selfReportedMs: number | undefined;
    if (successor) {
      const ev = await successor
        .waitEvent((e) => g.kind.isStartedLeading(e), 5000, marks.get(successor) ?? 0)
        .catch(() => undefined);
      if (ev) selfReportedMs = ev.t - t0;
    }
    leaseEvents.splice(0, leaseEvents.length);
    await victim.stop(15_000);
    victim.close();
    start(g, from);
    return {
      kind: g.kind.id,
      mode,
      round: i + 1,
      takeoverMs: takeover.stageAt - t0,
      selfReportedMs,
      releaseMs: release ? release.stageAt - t0 : undefined,
      from,
      to: takeover.user,
    };
  }
}
