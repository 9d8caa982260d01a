// `npm test`'s jest step, in two runs, one JSON report (JEST_JSON_REPORT, read by .ci/run):
// 1. every test but the timing-heavy ones, two workers (most integration
//    tests wait on the API server and on schedule slots, not on a core);
// 2. alone, one worker: the chaos profiles (they judge slots to the second),
//    the real-node tests (they own the machine's one real node), the image
//    build (a core for minutes), and the tests that install the chart or
//    change what every test shares — the Helm release's cluster-wide RBAC and
//    CRD (helm, operator-e2e), the elector's processes and Leases (election*,
//    duplicate-identity). Run beside the others they made them fail (a 403 when
//    a release's ClusterRole went away; a CRD swapped mid-test).
// Each run starts its own control plane (jest's globalSetup). Extra arguments
// go to both runs (e.g. --testPathPatterns scheduling).
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

/** Tests that run alone (run 2). */
export const SERIAL = 'test/integration/(chaos|operator-realnode|fence-realnode|realnode|image|helm|operator-e2e|election|election-restore|election-events|duplicate-identity|kueue)\\.test\\.ts';
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
  const r = spawnSync(process.execPath, ['--experimental-vm-modules', jest, '--json', `--outputFile=${out}`, ...args, ...extra], { stdio: 'inherit' });
  try {
    return JSON.parse(readFileSync(out, 'utf8')) as Report;
  } catch {
    console.error(`jest (${name}) wrote no report (exit ${r.status ?? r.signal})`);
    return undefined;
  }
}

const parts = [
  run('parallel', ['--maxWorkers=2', '--testPathIgnorePatterns', SERIAL, '--passWithNoTests']),
  run('serial', ['--maxWorkers=1', '--selectProjects', 'integration', '--testPathPatterns', SERIAL, '--passWithNoTests']),
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
console.log(`== jest: ${merged.numPassedTests} passed, ${merged.numFailedTests} failed, ${merged.numPendingTests} skipped (both runs)`);
process.exit(merged.success ? 0 : 1);
