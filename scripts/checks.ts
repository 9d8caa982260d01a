// `npm test`'s static checks, typecheck and lint, run at the same time: each
// is a single-threaded process (tsc; eslint, then prettier), so on a machine
// with two cores they take the longer one's time instead of the sum. Each
// one's output is held and printed whole when it ends, so the two never
// interleave; the exit code is non-zero when either failed.
import { spawn } from 'node:child_process';

const npm = process.env.npm_execpath;
const checks = ['typecheck', 'lint'];

const results = await Promise.all(
  checks.map(
    (script) =>
      new Promise<{ script: string; code: number; output: string; seconds: number }>((resolve) => {
        const started = performance.now();
        // npm_execpath is npm's own CLI when run through `npm run`; otherwise npm on the PATH.
        const child = npm
          ? spawn(process.execPath, [npm, 'run', script], { stdio: ['ignore', 'pipe', 'pipe'] })
          : spawn('npm', ['run', script], { stdio: ['ignore', 'pipe', 'pipe'] });
        const chunks: Buffer[] = [];
        child.stdout.on('data', (c: Buffer) => chunks.push(c));
        child.stderr.on('data', (c: Buffer) => chunks.push(c));
        child.on('error', (err) => resolve({ script, code: 1, output: String(err), seconds: 0 }));
        child.on('close', (code, signal) =>
          resolve({
            script,
            code: code ?? (signal ? 1 : 0),
            output: Buffer.concat(chunks).toString(),
            seconds: (performance.now() - started) / 1000,
          }),
        );
      }),
  ),
);
for (const r of results) {
  process.stdout.write(r.output);
  console.log(`== ${r.script}: ${r.code === 0 ? 'passed' : `FAILED (exit ${r.code})`} in ${r.seconds.toFixed(1)} s`);
}
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
