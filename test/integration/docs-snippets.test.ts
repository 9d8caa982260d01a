// The docs cannot rot: every code block marked `<!-- runnable -->` in docs/
// runs against the real control plane, in document order, one namespace per
// page, with a controller leading in it (the chart's RBAC). A YAML block is
// applied with `kubectl apply -f -`; a shell block runs in bash with
// `set -euo pipefail` and a kubeconfig whose current namespace is the page's,
// so the snippets read as a user types them. Every block must exit 0. (The
// controller runs in this process: a block runs asynchronously, never with
// spawnSync, or `kubectl wait` would wait on a blocked event loop.)
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { controllerTestEnv, fakeLeadership, kubectl } from '../support/singletonjobs.ts';
import { markdownFiles, read, runnableBlocks } from '../support/markdown.ts';

const env = controllerTestEnv();
const pages = markdownFiles('docs').filter((file) => runnableBlocks(read(file)).length > 0);

interface Exit {
  status: number | null;
  signal: NodeJS.Signals | null;
  output: string;
}

/** Runs `script` in bash, feeding `input` on stdin; stdout and stderr interleaved. */
function bash(script: string, input: string | undefined, kubeconfig: string, timeoutMs: number): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${script}`], {
      env: { ...process.env, KUBECONFIG: kubeconfig },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, output });
    });
    child.stdin.end(input ?? '');
  });
}

/** A copy of the test cluster's kubeconfig whose current context uses `namespace`. */
function kubeconfigFor(namespace: string, dir: string): string {
  const file = path.join(dir, 'kubeconfig');
  writeFileSync(file, readFileSync(env.cluster.kubeconfig, 'utf8'));
  kubectl(file, ['config', 'set-context', '--current', `--namespace=${namespace}`]);
  return file;
}

describe('the runnable blocks of docs/', () => {
  it('finds some', () => {
    expect(pages).toEqual(expect.arrayContaining(['docs/getting-started.md', 'docs/how-to.md']));
  });

  it.each(pages)(
    '%s: every runnable block exits 0, in order',
    async (page) => {
      const ns = await env.namespace('docs');
      const c = await env.controller(ns.name, { retryBackoffMs: 500 });
      void c.lead(fakeLeadership(1000));
      const dir = mkdtempSync(path.join(tmpdir(), 'docs-snippets-'));
      try {
        const kubeconfig = kubeconfigFor(ns.name, dir);
        for (const block of runnableBlocks(read(page))) {
          const [command, input] = block.lang === 'yaml' ? ['kubectl apply -f -', block.body] : [block.body, undefined];
          const run = await bash(command, input, kubeconfig, 150_000);
          expect({
            block: `${page}:${block.line}`,
            status: run.status,
            signal: run.signal,
            output: run.output,
          }).toEqual({
            block: `${page}:${block.line}`,
            status: 0,
            signal: null,
            output: expect.any(String),
          });
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
        await c.stop();
      }
    },
    600_000,
  );
});
