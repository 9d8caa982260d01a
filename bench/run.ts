// The benchmark runner: one local control plane, then
//   (a) failover + idle API cost, ours vs client-go leaderelection,
//   (b) the midnight stampede, SingletonJobs vs kube-controller-manager CronJobs,
//   (c) scale and memory of our operator at 100 / 1,000 / 10,000 SingletonJobs,
//   (d) crash failover on a real node (its own control plane): ours on the kubelet's
//       evidence vs ours by expiry vs client-go (bench/crash-realnode.ts),
//   (e) full profile: a takeover 5 s before a slot on a real node (bench/slot-takeover.ts)
//       and 10,000 SingletonJobs due at one common slot (bench/common-slot.ts), the
//       prepared runs' targets (issue 26),
// and writes bench/results/latest.{md,json,svg,png}.
//
//   npm run bench            # full profile (durations: bench/README.md)
//   npm run bench:quick      # quick profile
//   node bench/run.ts --profile=quick --only=failover --out=bench/results/tmp/try
// Other flags: --rounds=GRACEFUL,CRASH --stampede-count=N --scale-counts=100,1000
// --common-count=N --common-prepare-ahead=SECONDS --slot-takeover-count=N
// --keep-cluster (keep etcd data, component logs and the audit log).
// Needs rsvg-convert for the PNG chart: installed here when missing (as root, with apt-get), else the run
// stops before it starts.
import { spawnSync } from 'node:child_process';
import { mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../test/controlplane/controlplane.ts';
import { benchDir, clientGoElector, oursElector, type ElectorKind } from './electors.ts';
import { runFailover } from './failover.ts';
import { runStampede, STAMPEDE_SIDES, type StampedeSideName } from './stampede-run.ts';
import { runScale } from './scale-run.ts';
import { runCrashOnRealNode } from './crash-realnode.ts';
import { COMMON_DEFAULT_COUNT, commonPrepareAhead, runCommonSlot } from './common-slot.ts';
import { runSlotTakeover, SLOT_TAKEOVER_DEFAULT_COUNT } from './slot-takeover.ts';
import { rsvgAvailable, writeResults, type BenchResults, type Machine, type Part } from './report.ts';

interface Profile {
  gracefulRounds: number;
  crashRounds: number;
  /** Rounds per kind of the real-node crash failover (d). */
  nodeCrashRounds: number;
  idleWindowMs: number;
  stampedeCount: number;
  scaleCounts: number[];
  /** The common slot's N and its spec.prepareAheadSeconds (default: commonPrepareAhead(N)); the takeover-before-a-slot's N. */
  commonCount: number;
  commonPrepareAheadSeconds?: number;
  slotTakeoverCount: number;
  /** The parts run without --only. */
  parts: PartName[];
}

// In the order they run: the real-node parts (their own control planes) before the shared one gets busy, and the
// common slot last, since its 10,000 released Jobs keep the Job controller busy for minutes after it.
const parts = ['failover', 'crash', 'slot-takeover', 'stampede', 'scale', 'common10k'] as const;
type PartName = (typeof parts)[number];

const profiles: Record<string, Profile> = {
  quick: {
    gracefulRounds: 8,
    crashRounds: 3,
    nodeCrashRounds: 5,
    idleWindowMs: 60_000,
    stampedeCount: 1000,
    scaleCounts: [100, 1000],
    commonCount: COMMON_DEFAULT_COUNT,
    slotTakeoverCount: SLOT_TAKEOVER_DEFAULT_COUNT,
    parts: ['failover', 'crash', 'stampede', 'scale'],
  },
  full: {
    gracefulRounds: 25,
    crashRounds: 8,
    nodeCrashRounds: 10,
    idleWindowMs: 180_000,
    stampedeCount: 1000,
    scaleCounts: [100, 1000, 10_000],
    commonCount: COMMON_DEFAULT_COUNT,
    slotTakeoverCount: SLOT_TAKEOVER_DEFAULT_COUNT,
    parts: [...parts],
  },
};

function stamp(): string {
  return new Date().toISOString().slice(11, 19);
}

/** Preflight: rsvg-convert renders the PNG chart. Installs Debian's librsvg2-bin when missing, if it can. */
function ensureRsvgConvert(log: (m: string) => void): boolean {
  if (rsvgAvailable()) return true;
  const root = process.getuid?.() === 0;
  if (root) {
    log('rsvg-convert is missing: apt-get install librsvg2-bin');
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    const aptGet = (...args: string[]) => spawnSync('apt-get', args, { stdio: 'inherit', env }).status === 0;
    if (aptGet('update', '-qq') && aptGet('install', '-y', '-qq', 'librsvg2-bin') && rsvgAvailable()) return true;
  }
  console.error(
    `bench: the PNG chart needs rsvg-convert, from the Debian/Ubuntu package librsvg2-bin, and ${root ? 'apt-get could not install it' : 'installing it needs root'}. ` +
      'Install librsvg2-bin (.ci/run does) and run the bench again.',
  );
  return false;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      profile: { type: 'string', default: 'quick' },
      only: { type: 'string' },
      'stampede-sides': { type: 'string' },
      out: { type: 'string', default: path.join(benchDir, 'results', 'latest') },
      'scale-counts': { type: 'string' },
      'stampede-count': { type: 'string' },
      'common-count': { type: 'string' },
      'common-prepare-ahead': { type: 'string' },
      'slot-takeover-count': { type: 'string' },
      rounds: { type: 'string' },
      'keep-cluster': { type: 'boolean', default: false },
    },
  });
  const profile = { ...profiles[values.profile ?? 'quick']! };
  if (!profiles[values.profile ?? 'quick']) throw new Error(`unknown profile ${values.profile} (quick or full)`);
  if (values['scale-counts']) profile.scaleCounts = values['scale-counts'].split(',').map(Number);
  if (values['stampede-count']) profile.stampedeCount = Number(values['stampede-count']);
  if (values['common-count']) profile.commonCount = Number(values['common-count']);
  if (values['common-prepare-ahead']) profile.commonPrepareAheadSeconds = Number(values['common-prepare-ahead']);
  if (values['slot-takeover-count']) profile.slotTakeoverCount = Number(values['slot-takeover-count']);
  if (values.rounds) {
    const [g, c] = values.rounds.split(',').map(Number);
    profile.gracefulRounds = g ?? profile.gracefulRounds;
    profile.crashRounds = c ?? profile.crashRounds;
  }
  const badSide = values['stampede-sides']?.split(',').find((x) => !(STAMPEDE_SIDES as readonly string[]).includes(x));
  if (badSide)
    throw new Error(`--stampede-sides: unknown side "${badSide}" (one or more of ${STAMPEDE_SIDES.join(', ')})`);
  const badPart = values.only?.split(',').find((x) => !(parts as readonly string[]).includes(x));
  if (badPart) throw new Error(`--only: unknown part "${badPart}" (one or more of ${parts.join(', ')})`);
  const only = new Set<PartName>((values.only ? values.only.split(',') : profile.parts) as PartName[]);
  const log = (m: string) => console.log(`${stamp()} ${m}`);
  if (!ensureRsvgConvert(log)) return 1;
  const runId = new Date().toISOString().replace(/[:.]/g, '-');
  const workDir = path.join(benchDir, 'results', 'tmp', runId);
  mkdirSync(workDir, { recursive: true });
  mkdirSync(path.dirname(values.out!), { recursive: true });

  const startedAt = new Date().toISOString();
  const cpu = os.cpus();
  const machine: Machine = {
    host: os.hostname(),
    cpus: cpu.length,
    cpuModel: (cpu[0]?.model ?? 'unknown CPU').replace(/\s+/g, ' ').trim(),
    memGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: os.release(),
    node: process.version,
    loadAvgStart: os.loadavg(),
    kubernetes: 'unknown',
  };
  log(`profile ${values.profile}: ${JSON.stringify(profile)}; parts ${[...only].join(', ')}; logs in ${workDir}`);

  const skipped = (name: PartName): Part<never> =>
    only.has(name)
      ? { ok: false, error: 'not run: the run ended before this part' }
      : {
          ok: false,
          error: values.only
            ? `skipped (--only without ${name})`
            : `not in the ${values.profile} profile (--only=${name} runs it)`,
        };
  const results: BenchResults = {
    profile: values.profile!,
    startedAt,
    finishedAt: startedAt,
    machine,
    settings: { ...profile },
    failover: skipped('failover'),
    crash: skipped('crash'),
    stampede: skipped('stampede'),
    scale: skipped('scale'),
    common: skipped('common10k'),
    slotTakeover: skipped('slot-takeover'),
  };

  log('starting the control plane');
  const cp = await ControlPlane.start({ log: (m) => log(`  ${m}`), dir: path.join(workDir, 'cluster') });
  let stopping = false;
  const stopAll = async () => {
    if (stopping) return;
    stopping = true;
    // The cluster folder (etcd data, audit log) can reach gigabytes; keep it only when asked.
    await cp.stop({ keepDir: values['keep-cluster'] }).catch(() => undefined);
  };
  for (const sig of ['SIGINT', 'SIGTERM'] as const) {
    process.once(sig, () => {
      log(`${sig}: stopping the control plane`);
      void stopAll().then(() => process.exit(130));
    });
  }
  try {
    machine.kubernetes = (await cp.kubeConfig().makeApiClient(k8s.VersionApi).getCode()).gitVersion;
    const attempt = async <T>(name: PartName, fn: () => Promise<T>): Promise<Part<T>> => {
      if (!only.has(name)) return skipped(name);
      log(`=== ${name} ===`);
      try {
        const result = await fn();
        log(`=== ${name} done ===`);
        return { ok: true, result };
      } catch (err) {
        const error = err instanceof Error ? err.message : String(err);
        log(`=== ${name} FAILED: ${error}`);
        return { ok: false, error };
      }
    };
    results.failover = await attempt('failover', async () => {
      const kinds: ElectorKind[] = [clientGoElector(), oursElector()];
      results.settings.electors = kinds.map((k) => k.describe);
      return runFailover(cp, kinds, {
        gracefulRounds: profile.gracefulRounds,
        crashRounds: profile.crashRounds,
        idleWindowMs: profile.idleWindowMs,
        logDir: workDir,
        log,
      });
    });
    writeResults({ ...results, finishedAt: new Date().toISOString() }, values.out!);
    results.crash = await attempt('crash', () =>
      runCrashOnRealNode(clientGoElector(), {
        rounds: profile.nodeCrashRounds,
        workDir: path.join(workDir, 'crash'),
        log,
      }),
    );
    writeResults({ ...results, finishedAt: new Date().toISOString() }, values.out!);
    results.slotTakeover = await attempt('slot-takeover', () =>
      runSlotTakeover({ count: profile.slotTakeoverCount, workDir: path.join(workDir, 'slot-takeover'), log }),
    );
    writeResults({ ...results, finishedAt: new Date().toISOString() }, values.out!);
    results.stampede = await attempt('stampede', () =>
      runStampede(cp, {
        count: profile.stampedeCount,
        workDir,
        log,
        ...(values['stampede-sides'] ? { sides: values['stampede-sides'].split(',') as StampedeSideName[] } : {}),
      }),
    );
    writeResults({ ...results, finishedAt: new Date().toISOString() }, values.out!);
    results.scale = await attempt('scale', () => runScale(cp, { counts: profile.scaleCounts, workDir, log }));
    writeResults({ ...results, finishedAt: new Date().toISOString() }, values.out!);
    results.common = await attempt('common10k', () =>
      runCommonSlot(cp, {
        count: profile.commonCount,
        prepareAheadSeconds: profile.commonPrepareAheadSeconds ?? commonPrepareAhead(profile.commonCount),
        workDir,
        log,
      }),
    );
  } finally {
    results.finishedAt = new Date().toISOString();
    machine.loadAvgEnd = os.loadavg();
    const written = writeResults(results, values.out!);
    log(`wrote ${written.join(', ')}`);
    log('stopping the control plane');
    await stopAll();
  }
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? (err.stack ?? err.message) : err);
    process.exit(1);
  },
);
