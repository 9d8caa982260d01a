// Part (d): crash failover on a real node — the kubelet's evidence against the lease's expiry.
//
// Its own control plane with a real node (containerd, runc, a real kubelet:
// test/controlplane/realnode.ts) and the operator's image built from the
// repository (scripts/image.ts). Three electors per kind, default timings
// (15 s lease, 10 s renew deadline, 2 s retry period):
//   ours-evidence  the chart as shipped: 3 operator Pods, leaderElection.podEvidence=true
//   ours-expiry    the same image and chart with podEvidence=false: expiry only
//   clientgo       k8s.io/client-go's leaderelection (bench/clientgo-elector), 3 host processes
// A round kills the holder hard — SIGKILL of the operator container's task
// through containerd (the kubelet restarts it), or of the client-go process —
// and measures, from the audit log, the time from the kill to the first
// successful Lease write by another replica (its stageTimestamp). client-go
// runs as host processes: it has no evidence to act on, so where it runs does
// not change when it takes over (a lease after the last renew it saw, then
// its next 2 s poll). Kinds alternate round by round.
import * as k8s from '@kubernetes/client-node';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { ControlPlane } from '../test/controlplane/controlplane.ts';
import { resolveHelm } from '../test/controlplane/binaries.ts';
import { importImage, realNodeUnavailable } from '../test/controlplane/realnode.ts';
import { buildImage } from '../scripts/image.ts';
import { AuditReader, isWrite, succeeded, type AuditEvent } from './lib/audit.ts';
import { Child, sleep } from './lib/proc.ts';
import { summarize, type Summary } from './lib/stats.ts';
import type { ElectorKind } from './electors.ts';
import { installOperatorChart } from './lib/realnode-chart.ts';

export interface CrashOptions {
  rounds: number;
  workDir: string;
  log: (m: string) => void;
}

export interface CrashSample {
  kind: string;
  round: number;
  /** Kill → the successor's first committed Lease write (audit stageTimestamp). */
  takeoverMs: number;
  from: string;
  to: string;
}

export interface CrashKind {
  kind: string;
  label: string;
  describe: string;
  crash: Summary;
}

export interface CrashResult {
  leaseDurationMs: number;
  samples: CrashSample[];
  kinds: CrashKind[];
  notes: string[];
}

/** One group of three electors on one Lease, and how to kill its holder. */
interface Group {
  id: string;
  label: string;
  describe: string;
  namespace: string;
  lease: string;
  /** The holder's replica name (Pod or process identity); undefined while none leads or it is not back. */
  holder(): Promise<string | undefined>;
  /** Kills the holder hard; resolves at the kill. */
  kill(holder: string): Promise<void>;
  /** Resolves once all three replicas are up again (the killed one restarted). */
  settle(): Promise<void>;
  /** The replica an audit event came from. */
  replicaOf(e: AuditEvent): string | undefined;
  stop(): Promise<void>;
}

export async function runCrashOnRealNode(clientGo: ElectorKind, o: CrashOptions): Promise<CrashResult> {
  const unavailable = realNodeUnavailable();
  if (unavailable) throw new Error(`no real node here: ${unavailable}`);
  o.log('building the image (cached by content)');
  const image = await buildImage({ log: () => {} });
  mkdirSync(o.workDir, { recursive: true });
  // Its default folder (a short /tmp path): containerd's sockets live in it, and a unix socket path has at most 104 bytes.
  const cp = await ControlPlane.start({ realNode: true, log: (m) => o.log(`  ${m}`) });
  const groups: Group[] = [];
  try {
    importImage(cp.state.realNode!, image.archive);
    const kc = cp.kubeConfig();
    const core = kc.makeApiClient(k8s.CoreV1Api);
    const coord = kc.makeApiClient(k8s.CoordinationV1Api);
    const helmBin = resolveHelm();
    const readHolder = async (namespace: string, lease: string) => {
      try {
        return (await coord.readNamespacedLease({ name: lease, namespace })).spec?.holderIdentity || undefined;
      } catch {
        return undefined;
      }
    };

    // Two Helm releases of the operator, evidence on and off, each in its own namespace with its own (empty) watched namespace.
    for (const [id, evidence] of [
      ['ours-evidence', true],
      ['ours-expiry', false],
    ] as const) {
      const namespace = `crash-${id}`;
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      await core.createNamespace({ body: { metadata: { name: `${namespace}-apps` } } });
      const chart = await installOperatorChart({
        cp,
        helmBin,
        image,
        workDir: o.workDir,
        release: id,
        namespace,
        watchNamespaces: [`${namespace}-apps`],
        crds: id === 'ours-evidence',
        podEvidence: evidence,
      });
      groups.push({
        id,
        label: evidence ? 'ours, evidence' : 'ours, expiry only',
        describe: `singleton-operator ${image.tag} as installed by its chart (3 Pods, 15 s/10 s/2 s), leaderElection.podEvidence=${evidence}`,
        namespace,
        lease: chart.fullname,
        holder: () => chart.holderPod(),
        kill: (holder) => chart.killOperator(holder),
        settle: () => chart.settle(),
        replicaOf: (e) => e.pod,
        stop: async () => undefined,
      });
    }

    // client-go's elector: three host processes on one Lease.
    {
      const namespace = 'crash-clientgo';
      const lease = 'crash-clientgo';
      await core.createNamespace({ body: { metadata: { name: namespace } } });
      const identities = [1, 2, 3].map((i) => `crash-clientgo-${i}`);
      const kubeconfigs = new Map(identities.map((id) => [id, cp.kubeconfigFor(id, ['system:masters'])]));
      const children = new Map<string, Child>();
      const start = (identity: string) =>
        children.set(
          identity,
          clientGo.spawn({
            identity,
            kubeconfig: kubeconfigs.get(identity)!,
            namespace,
            lease,
            log: path.join(o.workDir, `${identity}.log`),
          }),
        );
      for (const id of identities) start(id);
      groups.push({
        id: 'clientgo',
        label: 'client-go',
        describe: clientGo.describe,
        namespace,
        lease,
        holder: async () => {
          const h = await readHolder(namespace, lease);
          return h && children.get(h)?.alive ? h : undefined;
        },
        kill: async (holder) => {
          children.get(holder)!.signal('SIGKILL');
        },
        // The killed process comes back under its identity only after the takeover (as the kubelet restarts a container):
        // a client-go elector restarted at once would find its own identity in the Lease and simply renew it.
        settle: async () => {
          for (const [identity, child] of children) {
            if (child.alive) continue;
            await child.stop(5_000);
            child.close();
            start(identity);
          }
          await sleep(1_000);
        },
        replicaOf: (e) => e.user,
        stop: async () => {
          await Promise.all([...children.values()].map((c) => c.stop(5000).then(() => c.close())));
        },
      });
    }

    const audit = new AuditReader(cp.state.auditLog);
    audit.skipToEnd();
    const samples: CrashSample[] = [];
    const waitHolder = async (g: Group) => {
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        const h = await g.holder();
        if (h) return h;
        await sleep(200);
      }
      throw new Error(`${g.label}: nobody leads Lease ${g.namespace}/${g.lease} after 60 s`);
    };
    for (const g of groups) {
      await g.settle();
      o.log(`${g.label}: ${await waitHolder(g)} leads ${g.namespace}/${g.lease}`);
    }
    for (let round = 1; round <= o.rounds; round++) {
      const order = round % 2 === 1 ? groups : [...groups].reverse();
      for (const g of order) {
        await g.settle();
        // A random pause, so the kill lands at a random point of the renew cycle.
        await sleep(2_500 + Math.random() * 2_500);
        const from = await waitHolder(g);
        audit.skipToEnd();
        const t0 = Date.now();
        await g.kill(from);
        let takeover: AuditEvent | undefined;
        while (!takeover) {
          if (Date.now() - t0 > 60_000)
            throw new Error(`${g.label} round ${round}: nobody took the Lease over within 60 s of the kill`);
          await sleep(50);
          takeover = audit
            .readNew()
            .find(
              (e) =>
                e.resource === 'leases' &&
                e.namespace === g.namespace &&
                e.name === g.lease &&
                isWrite(e) &&
                succeeded(e) &&
                e.stageAt >= t0 &&
                g.replicaOf(e) !== from,
            );
        }
        const sample = { kind: g.id, round, takeoverMs: takeover.stageAt - t0, from, to: g.replicaOf(takeover) ?? '?' };
        samples.push(sample);
        o.log(
          `crash #${String(round).padStart(2)} ${g.label.padEnd(18)} ${sample.from} → ${sample.to}: ${Math.round(sample.takeoverMs)} ms`,
        );
      }
    }
    return {
      leaseDurationMs: 15_000,
      samples,
      kinds: groups.map((g) => ({
        kind: g.id,
        label: g.label,
        describe: g.describe,
        crash: summarize(samples.filter((s) => s.kind === g.id).map((s) => s.takeoverMs)),
      })),
      notes: [
        'client-go runs as host processes (it acts on no evidence, so where it runs does not change when it takes over); ours as Pods on the real node, installed by the chart.',
      ],
    };
  } finally {
    for (const g of groups) await g.stop().catch(() => undefined);
    await cp.stop().catch(() => undefined);
  }
}
