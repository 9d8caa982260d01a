// The command-line contract of what ships: the operator's --help and its exit
// code for bad configuration (before it touches any cluster), and the kubectl
// plugin's help. Offline: no cluster is needed.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

function operator(args: string[], env: Record<string, string> = {}) {
  const res = spawnSync(process.execPath, [path.join(root, 'src/main.ts'), ...args], {
    encoding: 'utf8',
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    timeout: 30_000,
  });
  return { code: res.status, stdout: res.stdout, stderr: res.stderr };
}

describe('singleton-operator command line', () => {
  it('prints every flag with its environment variable on --help and exits 0', () => {
    const { code, stdout } = operator(['--help']);
    expect(code).toBe(0);
    for (const flag of [
      '--lease-namespace',
      '--lease-name',
      '--lease-duration',
      '--renew-deadline',
      '--retry-period',
      '--watch-namespaces',
      '--log-level',
      '--http-port',
      '--pod-name',
      '--shutdown-timeout',
    ]) {
      expect(stdout).toContain(flag);
    }
  });

  it('exits 2 with every problem spelled out for bad configuration', () => {
    const { code, stderr, stdout } = operator(['--log-level=chatty'], {
      POD_NAMESPACE: 'ops',
      LEASE_DURATION: '5',
      RETRY_PERIOD: '9s',
    });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('invalid configuration');
    expect(stderr).toContain('--log-level="chatty" (from --log-level): must be one of');
    expect(stderr).toContain('--lease-duration="5" (from $LEASE_DURATION): "5" is not a positive duration such as 15s');
    expect(stderr).toContain('Run with --help');
  });

  it('exits 2 when there is no kubeconfig to use', () => {
    const { code, stdout } = operator([], {
      POD_NAMESPACE: 'ops',
      KUBECONFIG: '/nonexistent/kubeconfig',
      HTTP_PORT: '0',
    });
    expect(code).toBe(2);
    expect(stdout).toMatch(/"level":"fatal".*"msg":"Failed to load the kubeconfig"/);
  });
});

describe('kubectl-singleton plugin', () => {
  it('explains itself and refuses unknown arguments', () => {
    const plugin = path.join(root, 'bin/kubectl-singleton');
    const help = spawnSync(plugin, ['--help'], { encoding: 'utf8' });
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('Usage: kubectl singleton');
    const bad = spawnSync(plugin, ['--bogus'], { encoding: 'utf8' });
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain('unknown argument --bogus');
    expect(spawnSync(plugin, ['run'], { encoding: 'utf8' }).stderr).toContain(
      'run needs exactly one SingletonJob NAME',
    );
  });

  // A stand-in kubectl on PATH records every call and answers the reads the plugin makes.
  function withFakeKubectl(answers: Record<string, string>) {
    const dir = mkdtempSync(path.join(tmpdir(), 'fake-kubectl-'));
    const log = path.join(dir, 'calls');
    const cases = Object.entries(answers)
      .map(([match, out]) => `  *${JSON.stringify(match)}*) printf '%b' ${JSON.stringify(out)} ;;`)
      .join('\n');
    writeFileSync(
      path.join(dir, 'kubectl'),
      `#!/usr/bin/env bash\necho "$*" >> ${JSON.stringify(log)}\ncase "$*" in\n${cases}\nesac\n`,
      { mode: 0o755 },
    );
    const run = (...args: string[]) =>
      spawnSync(path.join(root, 'bin/kubectl-singleton'), args, {
        encoding: 'utf8',
        env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
      });
    const calls = () => (existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : []);
    return { run, calls, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
  }

  it("acts in the context's namespace like kubectl: run now, suspend, resume", () => {
    const fake = withFakeKubectl({ 'config view --minify': 'team-a' });
    try {
      const run = fake.run('run', 'nightly');
      expect(run.status).toBe(0);
      expect(run.stdout).toMatch(/Requested a run of team-a\/nightly \(request id kubectl-\d{8}T\d{6}Z-\d+\)/);
      expect(fake.run('suspend', 'nightly', '-n', 'team-b').status).toBe(0);
      expect(fake.run('resume', 'nightly').status).toBe(0);
      const calls = fake.calls().filter((c) => !c.startsWith('config'));
      expect(calls[0]).toMatch(
        /^annotate singletonjobs.singleton.dev nightly -n team-a singleton.dev\/run-now=kubectl-\S+ --overwrite$/,
      );
      expect(calls[1]).toBe(
        'patch singletonjobs.singleton.dev nightly -n team-b --type=merge -p {"spec":{"suspend":true}}',
      );
      expect(calls[2]).toBe(
        'patch singletonjobs.singleton.dev nightly -n team-a --type=merge -p {"spec":{"suspend":false}}',
      );
      expect(calls[3]).toMatch(
        /^annotate singletonjobs.singleton.dev nightly -n team-a singleton.dev\/resume=kubectl-\S+ --overwrite$/,
      );
    } finally {
      fake.cleanup();
    }
  });

  it('backfill: a past range as RFC 3339 instants in the annotation, refused when it cannot be read', () => {
    const fake = withFakeKubectl({ 'config view --minify': 'team-a' });
    try {
      const ok = fake.run('backfill', 'nightly', '2026-11-01T00:00:00Z', '2026-11-03 00:00 UTC');
      expect(ok.status).toBe(0);
      expect(fake.calls().filter((c) => !c.startsWith('config'))).toEqual([
        'annotate singletonjobs.singleton.dev nightly -n team-a singleton.dev/backfill=2026-11-01T00:00:00Z/2026-11-03T00:00:00Z --overwrite',
      ]);
      const bad = fake.run('backfill', 'nightly', 'yesterday-ish', 'now');
      expect(bad.status).toBe(2);
      expect(bad.stderr).toContain('cannot read FROM');
      const backwards = fake.run('backfill', 'nightly', '2026-11-03T00:00:00Z', '2026-11-01T00:00:00Z');
      expect(backwards.status).toBe(2);
      expect(backwards.stderr).toContain('must be before');
    } finally {
      fake.cleanup();
    }
  });

  it('shows the history with tokens, outcomes and durations, and the next slot', () => {
    const fake = withFakeKubectl({
      'config view --minify': 'team-a',
      'activeRun.name': 'nightly-7|7|3|Manual|2026-01-02T00:00:00Z',
      'recentRuns[*]':
        'nightly-6|6|3|Scheduled|Failed|2026-01-01T00:00:00Z|2026-01-01T00:01:30Z\nnightly-5|5|2|Scheduled|Succeeded|2025-12-31T00:00:00Z|2025-12-31T02:00:05Z\n',
      nextScheduleTime: '0 0 * * *|Europe/Berlin||2026-01-03T00:00:00Z\n',
    });
    try {
      const history = fake.run('history', 'nightly');
      expect(history.status).toBe(0);
      const lines = history.stdout.trim().split('\n');
      expect(lines[0]).toMatch(/^JOB\s+TOKEN\s+TERM\s+KIND\s+OUTCOME\s+STARTED\s+DURATION$/);
      expect(lines[1]).toMatch(/^nightly-7\s+7\s+3\s+Manual\s+Running\s+2026-01-02T00:00:00Z/);
      expect(lines[2]).toMatch(/^nightly-6\s+6\s+3\s+Scheduled\s+Failed\s+2026-01-01T00:00:00Z\s+1m30s$/);
      expect(lines[3]).toMatch(/^nightly-5\s+5\s+2\s+Scheduled\s+Succeeded\s+2025-12-31T00:00:00Z\s+2h0m5s$/);
      expect(fake.calls().some((c) => c.includes('get singletonjobs.singleton.dev nightly -n team-a'))).toBe(true);
      expect(fake.run('next', 'nightly').stdout.trim()).toBe(
        'team-a/nightly: next slot 2026-01-03T00:00:00Z (schedule 0 0 * * * Europe/Berlin)',
      );
    } finally {
      fake.cleanup();
    }
  });

  it("finds the operator's Lease from its labelled Pods, without hard-coded names", () => {
    const fake = withFakeKubectl({
      'config view --minify': '',
      'get pods -A -l app.kubernetes.io/name=singleton-operator': 'ops|my-release-singleton-operator\n',
      'get lease my-release-singleton-operator -n ops': 'ops-pod-0_ab12|4|2026-01-01T00:00:00.000000Z|15\n',
    });
    try {
      const status = fake.run();
      expect(status.status).toBe(0);
      expect(status.stdout).toContain('LEADER    ops-pod-0_ab12');
      expect(status.stdout).toContain('LEASE     ops/my-release-singleton-operator  transitions=4');
      expect(fake.calls().some((c) => c.startsWith('get singletonjobs.singleton.dev -n default'))).toBe(true);
    } finally {
      fake.cleanup();
    }
  });
});
