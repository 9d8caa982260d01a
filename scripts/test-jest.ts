// `npm test`'s jest step, in three runs, one JSON report (JEST_JSON_REPORT, read by .ci/run):
// 1. every test but the ones below, two workers (most integration tests wait
//    on the API server and on schedule slots, not on a core);
// 2. after it, two runs side by side, each with one worker and a control
//    plane of its own (jest's globalSetup), so neither can disturb the other:
//    a. the chaos profiles (their faults stop components of their control
//       plane; they judge slots to the second, so nothing else runs on it);
//    b. one after another, the real-node tests (they own the machine's one
//       real node, its containerd, CNI bridge and cgroups), the image build
//       (the real-node tests import the image it builds) and Kueue (its
//       webhooks and CRDs are cluster-wide).
//    2a's output is printed when it ends, so that the two do not interleave.
// Tests that would change what every test shares do that on a control plane
// of their own instead, and so run in run 1: election.test.ts restarts the API
// server (a restarted API server answers 403 until its RBAC caches have
// synced, which failed scheduling.test.ts's controllers), operator-e2e.test.ts
// installs the chart cluster-wide (its operator acted on
// controller-fencing.test.ts's objects), election-restore.test.ts rolls etcd
// back.
// Extra arguments go to every run (e.g. --testPathPatterns scheduling).
import { spawn } from 'node:child_process';
import { createWriteStream, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** test/integration files (their names without .test.ts) as one --testPathPatterns regex. */
const files = (names: string[]) => `test/integration/(${names.join('|')})\\.test\\.ts`;
/** The chaos profiles: run 2a. */
const CHAOS_FILES = ['chaos'];
/** The tests that own the machine or the cluster: run 2b, one at a time. */
const ALONE_FILES = ['operator-realnode', 'fence-realnode', 'realnode', 'image', 'kueue'];
export const CHAOS = files(CHAOS_FILES);
export const ALONE = files(ALONE_FILES);
/** Every test that is not in run 1. */
export const SERIAL = files([...CHAOS_FILES, ...ALONE_FILES]);
const jest = path.join('node_modules', 'jest', 'bin', 'jest.js');
const report = process.env.JEST_JSON_REPORT ?? '.jest-report.json';
const extra = process.argv.slice(2);

interface Report {
  success: boolean;
  startTime: number;
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTotalTestSuites: number;
  numFailedTestSuites: number;
  testResults: unknown[];
}

/** One jest run; its output goes to ours, or to `logFile` (printed by the caller). */
function run(name: string, args: string[], logFile?: string): Promise<Report | undefined> {
  const out = `${report}.${name}`;
  rmSync(out, { force: true });
  console.log(`== jest (${name}): ${args.join(' ')}${logFile ? ` (output in ${logFile}, printed when it ends)` : ''}`);
  const child = spawn(
    process.execPath,
    ['--experimental-vm-modules', jest, '--json', `--outputFile=${out}`, ...args, ...extra],
    {
      stdio: logFile ? ['ignore', 'pipe', 'pipe'] : 'inherit',
    },
  );
  if (logFile) {
    const log = createWriteStream(logFile);
    child.stdout!.pipe(log);
    child.stderr!.pipe(log);
  }
  return new Promise((resolve) => {
    child.on('close', (status, signal) => {
      try {
        resolve(JSON.parse(readFileSync(out, 'utf8')) as Report);
      } catch {
        console.error(`jest (${name}) wrote no report (exit ${status ?? signal})`);
        resolve(undefined);
      }
    });
  });
}

const chaosLog = `${report}.chaos.log`;
const parallel = await run('parallel', ['--maxWorkers=2', '--testPathIgnorePatterns', SERIAL, '--passWithNoTests']);
const [chaos, alone] = await Promise.all([
  run(
    'chaos',
    ['--maxWorkers=1', '--selectProjects', 'integration', '--testPathPatterns', CHAOS, '--passWithNoTests'],
    chaosLog,
  ).finally(() => {
    console.log(`== jest (chaos) output:\n${readFileSync(chaosLog, 'utf8')}`);
  }),
  run('alone', ['--maxWorkers=1', '--selectProjects', 'integration', '--testPathPatterns', ALONE, '--passWithNoTests']),
]);
const parts = [parallel, chaos, alone];
const done = parts.filter((p): p is Report => p !== undefined);
const sum = (k: keyof Report) => done.reduce((n, p) => n + (p[k] as number), 0);
const merged = {
  success: done.length === parts.length && done.every((p) => p.success),
  startTime: Math.min(...done.map((p) => p.startTime)),
  numTotalTests: sum('numTotalTests'),
  numPassedTests: sum('numPassedTests'),
  numFailedTests: sum('numFailedTests'),
  numPendingTests: sum('numPendingTests'),
  numTotalTestSuites: sum('numTotalTestSuites'),
  numFailedTestSuites: sum('numFailedTestSuites'),
  testResults: done.flatMap((p) => p.testResults),
};
writeFileSync(report, JSON.stringify(merged));
console.log(
  `== jest: ${merged.numPassedTests} passed, ${merged.numFailedTests} failed, ${merged.numPendingTests} skipped (all runs)`,
);
process.exit(merged.success ? 0 : 1);
