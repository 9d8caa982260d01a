// The two kinds of elector the failover benchmark compares. Each runs as its
// own process, prints JSON lines on stdout, takes the Lease with the same
// default timings (15 s lease, 10 s renew deadline, 2 s retry period) and
// releases it when it gets SIGTERM.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Child, type LineEvent } from './lib/proc.ts';

export const benchDir = path.dirname(fileURLToPath(import.meta.url));
export const repoRoot = path.resolve(benchDir, '..');

export interface SpawnElector {
  identity: string;
  kubeconfig: string;
  namespace: string;
  lease: string;
  log: string;
}

export interface ElectorKind {
  id: string;
  label: string;
  /** What it is, for the report. */
  describe: string;
  spawn(o: SpawnElector): Child;
  isStartedLeading(e: LineEvent): boolean;
}

/** Builds (if needed) and locates the client-go peer elector. */
export function clientGoElector(): ElectorKind {
  const out = execFileSync('bash', [path.join(benchDir, 'clientgo-elector', 'build.sh')], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const binary = out.trim().split('\n').pop()!;
  if (!existsSync(binary)) throw new Error(`clientgo-elector build did not produce ${binary}`);
  return {
    id: 'clientgo',
    label: 'client-go',
    describe: `k8s.io/client-go v0.36.3 tools/leaderelection, LeaseLock, 15 s/10 s/2 s, ReleaseOnCancel (${path.basename(path.dirname(binary))})`,
    spawn: (o) =>
      new Child({
        name: o.identity,
        command: binary,
        args: [
          `--kubeconfig=${o.kubeconfig}`,
          `--identity=${o.identity}`,
          `--namespace=${o.namespace}`,
          `--name=${o.lease}`,
        ],
        log: o.log,
      }),
    isStartedLeading: (e) => e.event === 'started_leading',
  };
}

/** Our LeaderElector, run one per process by bench/ours-elector.ts. */
export function oursElector(): ElectorKind {
  const script = path.join(benchDir, 'ours-elector.ts');
  const needs = path.join(repoRoot, 'src', 'election', 'elector.ts');
  if (!existsSync(needs))
    throw new Error(
      `the failover benchmark needs the LeaderElector (src/election/elector.ts), which has not landed yet`,
    );
  return {
    id: 'ours',
    label: 'ours',
    describe: 'singleton-operator LeaderElector (src/election), watch-based standbys, 15 s/10 s/2 s, releaseOnCancel',
    spawn: (o) =>
      new Child({
        name: o.identity,
        command: process.execPath,
        args: [
          script,
          `--kubeconfig=${o.kubeconfig}`,
          `--identity=${o.identity}`,
          `--namespace=${o.namespace}`,
          `--name=${o.lease}`,
        ],
        log: o.log,
        cwd: repoRoot,
      }),
    isStartedLeading: (e) => e.event === 'started_leading',
  };
}
