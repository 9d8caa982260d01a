// The command-line contract of what ships: the operator's --help and its exit
// code for bad configuration (before it touches any cluster), and the kubectl
// plugin's help. Offline: no cluster is needed.
import { spawnSync } from 'node:child_process';
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
    for (const flag of ['--lease-namespace', '--lease-name', '--lease-duration', '--renew-deadline', '--retry-period', '--watch-namespaces', '--log-level', '--http-port', '--pod-name', '--shutdown-timeout']) {
      expect(stdout).toContain(flag);
    }
  });

  it('exits 2 with every problem spelled out for bad configuration', () => {
    const { code, stderr, stdout } = operator(['--log-level=chatty'], { POD_NAMESPACE: 'ops', LEASE_DURATION: '5', RETRY_PERIOD: '9s' });
    expect(code).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toContain('invalid configuration');
    expect(stderr).toContain('--log-level="chatty" (from --log-level): must be one of');
    expect(stderr).toContain('--lease-duration="5" (from $LEASE_DURATION): "5" is not a positive duration such as 15s');
    expect(stderr).toContain('Run with --help');
  });

  it('exits 2 when there is no kubeconfig to use', () => {
    const { code, stdout } = operator([], { POD_NAMESPACE: 'ops', KUBECONFIG: '/nonexistent/kubeconfig', HTTP_PORT: '0' });
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
  });
});
