import { ConfigurationError, loadConfig, parseDuration, usage, type OperatorConfig } from './config.ts';

const env = { POD_NAMESPACE: 'singleton-system', POD_NAME: 'op-0' };

function load(argv: string[], e: NodeJS.ProcessEnv = env): OperatorConfig {
  const c = loadConfig(argv, e);
  if (c === 'help') throw new Error('unexpected help');
  return c;
}

function problems(argv: string[], e: NodeJS.ProcessEnv = env): string[] {
  try {
    loadConfig(argv, e);
  } catch (err) {
    if (err instanceof ConfigurationError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigurationError');
}

describe('loadConfig', () => {
  it('applies the defaults (client-go timings, all namespaces)', () => {
    expect(load([])).toEqual({
      leaseNamespace: 'singleton-system',
      leaseName: 'singleton-operator',
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      watchNamespaces: [],
      logLevel: 'info',
      httpHost: '0.0.0.0',
      httpPort: 8080,
      podName: 'op-0',
      identity: undefined,
      kubeconfig: undefined,
      shutdownTimeoutMs: 20_000,
      maxConcurrentReconciles: 16,
      replicaPodSelector: undefined,
      replicaContainer: 'operator',
    });
  });

  it('reads --replica-pod-selector (equality-based only) and --replica-container, naming the flag when either is malformed', () => {
    const c = load([
      '--replica-pod-selector=app.kubernetes.io/name=singleton-operator,app.kubernetes.io/instance=so',
      '--replica-container=op',
    ]);
    expect(c.replicaPodSelector).toBe('app.kubernetes.io/name=singleton-operator,app.kubernetes.io/instance=so');
    expect(c.replicaContainer).toBe('op');
    expect(() => load(['--replica-pod-selector=app in (a,b)'])).toThrow(
      /--replica-pod-selector="app in \(a,b\)".*equality-based label selector/,
    );
    expect(() => load(['--replica-pod-selector=,'])).toThrow(/--replica-pod-selector/);
    expect(() => load(['--replica-container=Op_1'])).toThrow(/--replica-container="Op_1".*container name/);
  });

  it('reads --max-concurrent-reconciles and refuses what is not 1 to 256', () => {
    expect(load(['--max-concurrent-reconciles=32']).maxConcurrentReconciles).toBe(32);
    expect(() => load(['--max-concurrent-reconciles=0'])).toThrow(/max-concurrent-reconciles.*at least 1/);
    expect(() => load(['--max-concurrent-reconciles=lots'])).toThrow(/max-concurrent-reconciles.*whole number/);
  });

  it('reads the environment, and flags win over it', () => {
    const c = load(['--lease-name=flag-lease', '--watch-namespaces', 'a, b,,a'], {
      ...env,
      LEASE_NAME: 'env-lease',
      LOG_LEVEL: 'debug',
      LEASE_NAMESPACE: 'ops',
      HTTP_PORT: '0',
    });
    expect(c.leaseName).toBe('flag-lease');
    expect(c.logLevel).toBe('debug');
    expect(c.leaseNamespace).toBe('ops');
    expect(c.watchNamespaces).toEqual(['a', 'b']);
    expect(c.httpPort).toBe(0);
  });

  it('names the flag, the source and the problem for every bad value at once', () => {
    const found = problems(['--lease-duration=soon', '--http-port=70000'], {
      ...env,
      LOG_LEVEL: 'loud',
      WATCH_NAMESPACES: 'Bad_NS',
    });
    expect(found).toHaveLength(4);
    expect(found.join('\n')).toMatch(
      /--lease-duration="soon" \(from --lease-duration\): "soon" is not a positive duration such as 15s/,
    );
    expect(found.join('\n')).toMatch(/--http-port="70000" \(from --http-port\): must be a port number/);
    expect(found.join('\n')).toMatch(/--log-level="loud" \(from \$LOG_LEVEL\): must be one of fatal, error/);
    expect(found.join('\n')).toMatch(
      /--watch-namespaces="Bad_NS" \(from \$WATCH_NAMESPACES\): must be a namespace name/,
    );
  });

  it('requires the Lease namespace', () => {
    expect(problems([], { POD_NAME: 'x' })).toEqual([
      expect.stringMatching(/^--lease-namespace \(or \$LEASE_NAMESPACE or \$POD_NAMESPACE\) is required/),
    ]);
  });

  it('checks the election timings with the flag names', () => {
    expect(problems(['--lease-duration=5s', '--renew-deadline=10s'])).toEqual([
      expect.stringMatching(/--lease-duration \(5000 ms\) must be longer than --renew-deadline/),
    ]);
    expect(problems(['--retry-period=9s'])).toEqual([
      expect.stringMatching(/--renew-deadline \(10000 ms\) must be longer than 1.2 × --retry-period/),
    ]);
    expect(problems(['--lease-duration=15500ms'])).toEqual([expect.stringMatching(/whole number of seconds/)]);
  });

  it('rejects unknown flags readably and answers --help', () => {
    expect(problems(['--leader-elect'])).toEqual([
      expect.stringMatching(/Unknown option '--leader-elect'.*see --help/),
    ]);
    expect(loadConfig(['--help'], env)).toBe('help');
    expect(usage()).toContain('--lease-duration');
    expect(usage()).toContain('env: LEASE_DURATION');
  });
});

describe('parseDuration', () => {
  it.each([
    ['15s', 15_000],
    ['500ms', 500],
    ['1.5s', 1_500],
    ['2m', 120_000],
    ['1h', 3_600_000],
  ])('%s is %d ms', (text, ms) => expect(parseDuration(text)).toBe(ms));
  it.each(['15', 's', '-1s', '1d', ''])('%j is not a duration', (text) => expect(parseDuration(text)).toBeUndefined());
});
