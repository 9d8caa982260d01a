// `npm test`'s jest step, in two runs, one JSON report (JEST_JSON_REPORT, read by .ci/run):
// 1. every test but the timing-heavy ones, two workers (most integration
//    tests wait on the API server and on schedule slots, not on a core);
// 2. alone, one worker: the chaos profiles (they judge slots to the second,
//    and their faults stop components of the shared control plane), the
//    real-node tests (they own the machine's one real node, its containerd,
//    CNI bridge and cgroups) and the image build (a core for minutes; the
//    real-node tests import the image it builds).
// Each run starts its own control plane (jest's globalSetup). Tests that would
// change what every test shares do that on a control plane of their own
// instead, and so run in run 1: election.test.ts restarts the API server (a
// restarted API server answers 403 until its RBAC caches have synced, which
// failed scheduling.test.ts's controllers), operator-e2e.test.ts installs the
// chart cluster-wide (its operator acted on controller-fencing.test.ts's
// objects), election-restore.test.ts rolls etcd back.
// Extra arguments go to both runs (e.g. --testPathPatterns scheduling).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Tests that run alone (run 2). */
export const SERIAL = 'test/integration/(chaos|operator-realnode|fence-realnode|realnode|image|kueue)\\.test\\.ts';
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

function run(name: string, args: string[]): Report | undefined {
  const out = `${report}.${name}`;
  rmSync(out, { force: true });
  console.log(`== jest (${name}): ${args.join(' ')}`);
  const r = spawnSync(
    process.execPath,
    ['--experimental-vm-modules', jest, '--json', `--outputFile=${out}`, ...args, ...extra],
    { stdio: 'inherit' },
  );
  try {
    return JSON.parse(readFileSync(out, 'utf8')) as Report;
  } catch {
    console.error(`jest (${name}) wrote no report (exit ${r.status ?? r.signal})`);
    return undefined;
  }
}

const parts = [
  run('parallel', ['--maxWorkers=2', '--testPathIgnorePatterns', SERIAL, '--passWithNoTests']),
  run('serial', [
    '--maxWorkers=1',
    '--selectProjects',
    'integration',
    '--testPathPatterns',
    SERIAL,
    '--passWithNoTests',
  ]),
];
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
  `== jest: ${merged.numPassedTests} passed, ${merged.numFailedTests} failed, ${merged.numPendingTests} skipped (both runs)`,
);
process.exit(merged.success ? 0 : 1);
