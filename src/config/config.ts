// The operator's configuration: command-line flags, each with an environment
// variable of the same name (flags win), validated with zod so that a bad value
// is reported with the flag, the variable and what was wrong — all problems at
// once, before anything connects to the cluster.
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';
import { z } from 'zod';

export interface OperatorConfig {
  /** Namespace of the leader-election Lease (the operator's own namespace). */
  leaseNamespace: string;
  leaseName: string;
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  /** Namespaces whose SingletonJobs are reconciled; empty means all namespaces. */
  watchNamespaces: string[];
  logLevel: LogLevel;
  httpHost: string;
  httpPort: number;
  podName: string;
  /** Lease holder identity; derived from the pod name (plus a random suffix) when not set. */
  identity: string | undefined;
  /** Path of a kubeconfig; in-cluster or ~/.kube/config when not set. */
  kubeconfig: string | undefined;
  /** Upper bound for a graceful shutdown; keep it below the Pod's terminationGracePeriodSeconds. */
  shutdownTimeoutMs: number;
  /** Reconcile passes run at once by the leader (controller-runtime's MaxConcurrentReconciles). */
  maxConcurrentReconciles: number;
  /** Label selector of the installation's replica Pods (in the Lease namespace): their status is evidence of a dead holder. */
  replicaPodSelector: string | undefined;
  /** The container of a replica Pod that the operator runs in. */
  replicaContainer: string;
}

/** Default of --max-concurrent-reconciles (bench/results: the stampede with 8, 16 and 32). */
export const DEFAULT_CONCURRENT_RECONCILES = 16;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export class ConfigurationError extends Error {
  override name = 'ConfigurationError';
  readonly problems: string[];
  constructor(problems: string[]) {
    super(`invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
    this.problems = problems;
  }
}

/** Parses "15s", "500ms", "1m", "1.5s" into milliseconds. */
export function parseDuration(value: string): number | undefined {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$/.exec(value);
  if (!match) return undefined;
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[match[2] as 'ms' | 's' | 'm' | 'h'];
  return Math.round(Number(match[1]) * unit);
}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomain = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

const duration = z.string().transform((value, ctx) => {
  const ms = parseDuration(value);
  if (ms === undefined || ms <= 0) {
    ctx.addIssue({ code: 'custom', message: `"${value}" is not a positive duration such as 15s, 500ms or 1m` });
    return z.NEVER;
  }
  return ms;
});

const namespaceName = z
  .string()
  .max(63)
  .regex(dnsLabel, 'must be a namespace name (lower-case letters, digits and "-", at most 63 characters)');

/** One entry per setting: the flag, its variable, the default and the schema. */
const settings = {
  leaseNamespace: {
    flag: 'lease-namespace',
    env: 'LEASE_NAMESPACE',
    fallbackEnv: 'POD_NAMESPACE',
    help: 'Namespace of the leader-election Lease (default: $POD_NAMESPACE)',
    schema: namespaceName,
  },
  leaseName: {
    flag: 'lease-name',
    env: 'LEASE_NAME',
    default: 'singleton-operator',
    help: 'Name of the leader-election Lease',
    schema: z.string().max(253).regex(dnsSubdomain, 'must be a Lease name (a lower-case DNS subdomain)'),
  },
  leaseDurationMs: {
    flag: 'lease-duration',
    env: 'LEASE_DURATION',
    default: '15s',
    help: 'How long standbys wait after the last renew they saw before taking over (whole seconds)',
    schema: duration,
  },
  renewDeadlineMs: {
    flag: 'renew-deadline',
    env: 'RENEW_DEADLINE',
    default: '10s',
    help: 'The leader steps down when it could not renew for this long',
    schema: duration,
  },
  retryPeriodMs: {
    flag: 'retry-period',
    env: 'RETRY_PERIOD',
    default: '2s',
    help: 'Renew interval of the leader, and retry interval after errors',
    schema: duration,
  },
  watchNamespaces: {
    flag: 'watch-namespaces',
    env: 'WATCH_NAMESPACES',
    default: '',
    help: 'Comma-separated namespaces to reconcile SingletonJobs in (default: all)',
    schema: z
      .string()
      .transform((s) => [
        ...new Set(
          s
            .split(',')
            .map((n) => n.trim())
            .filter((n) => n.length > 0),
        ),
      ])
      .pipe(z.array(namespaceName)),
  },
  logLevel: {
    flag: 'log-level',
    env: 'LOG_LEVEL',
    default: 'info',
    help: `Log level: ${LOG_LEVELS.join(', ')}`,
    schema: z.enum(LOG_LEVELS, { error: `must be one of ${LOG_LEVELS.join(', ')}` }),
  },
  httpHost: {
    flag: 'http-host',
    env: 'HTTP_HOST',
    default: '0.0.0.0',
    help: 'Address the health and metrics server listens on',
    schema: z.string().min(1),
  },
  httpPort: {
    flag: 'http-port',
    env: 'HTTP_PORT',
    default: '8080',
    help: 'Port of the health (/livez, /readyz) and metrics (/metrics) server; 0 picks a free one',
    schema: z
      .string()
      .regex(/^\d+$/, 'must be a port number')
      .transform(Number)
      .pipe(z.number().int().min(0, 'must be a port number (0-65535)').max(65535, 'must be a port number (0-65535)')),
  },
  podName: {
    flag: 'pod-name',
    env: 'POD_NAME',
    help: 'Name of this replica (default: the host name)',
    schema: z.string().min(1).max(200),
  },
  identity: {
    flag: 'identity',
    env: 'IDENTITY',
    help: 'Lease holder identity (default: <pod name>_<random suffix>, unique per process)',
    schema: z.string().min(1).max(253).optional(),
  },
  kubeconfig: {
    flag: 'kubeconfig',
    env: 'KUBECONFIG',
    help: 'Path to a kubeconfig (default: in-cluster, else ~/.kube/config)',
    schema: z.string().min(1).optional(),
  },
  shutdownTimeoutMs: {
    flag: 'shutdown-timeout',
    env: 'SHUTDOWN_TIMEOUT',
    default: '20s',
    help: 'Exit (code 3) when a graceful shutdown takes longer than this',
    schema: duration,
  },
  maxConcurrentReconciles: {
    flag: 'max-concurrent-reconciles',
    env: 'MAX_CONCURRENT_RECONCILES',
    default: String(DEFAULT_CONCURRENT_RECONCILES),
    help: 'SingletonJobs the leader reconciles at once (one object is never reconciled twice at once); more starts a stampede of due runs faster at the cost of API server load',
    schema: z
      .string()
      .regex(/^\d+$/, 'must be a whole number from 1 to 256')
      .transform(Number)
      .pipe(z.number().int().min(1, 'must be at least 1').max(256, 'must be at most 256')),
  },
  replicaPodSelector: {
    flag: 'replica-pod-selector',
    env: 'REPLICA_POD_SELECTOR',
    help: "Label selector of this installation's replica Pods in the Lease namespace (the chart sets it): a standby takes the Lease over as soon as the kubelet reports the holder's container dead or its Pod removed, instead of when its lease expires; needs get/list/watch on those Pods. Unset: expiry only",
    schema: z
      .string()
      .max(1024)
      .regex(
        /^[A-Za-z0-9][A-Za-z0-9./_-]*(==?|!=)[A-Za-z0-9._-]*(,[A-Za-z0-9][A-Za-z0-9./_-]*(==?|!=)[A-Za-z0-9._-]*)*$/,
        'must be an equality-based label selector such as app.kubernetes.io/name=singleton-operator,app.kubernetes.io/instance=so',
      )
      .optional(),
  },
  replicaContainer: {
    flag: 'replica-container',
    env: 'REPLICA_CONTAINER',
    default: 'operator',
    help: 'The container of a replica Pod the operator runs in (whose termination is evidence of a dead Lease holder)',
    schema: z
      .string()
      .max(63)
      .regex(dnsLabel, 'must be a container name (lower-case letters, digits and "-", at most 63 characters)'),
  },
} satisfies Record<keyof OperatorConfig, Setting>;

interface Setting {
  flag: string;
  env: string;
  fallbackEnv?: string;
  default?: string;
  help: string;
  schema: z.ZodType;
}

export type ConfigKey = keyof typeof settings;

/** The flags and variables, for --help and the generated docs/reference/operator.md. */
export function describeSettings(): Array<{ flag: string; env: string; default: string; help: string }> {
  return Object.values(settings).map((s: Setting) => ({
    flag: `--${s.flag}`,
    env: s.fallbackEnv ? `${s.env} (or ${s.fallbackEnv})` : s.env,
    default: s.default ?? '',
    help: s.help,
  }));
}

export function usage(): string {
  const rows = describeSettings().map(
    (r) =>
      `  ${`${r.flag}=…`.padEnd(26)} ${r.help}${r.default ? ` [${r.default}]` : ''}\n  ${''.padEnd(26)} env: ${r.env}`,
  );
  return `Usage: singleton-operator [flags]\n\nEvery flag can also be set through the environment variable shown; flags win.\n\n${rows.join('\n')}\n  --help                     Show this help\n`;
}

/**
 * Reads the configuration from argv (without the node and script arguments)
 * and the environment. Throws ConfigurationError listing every problem;
 * returns 'help' when --help was given.
 */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env): OperatorConfig | 'help' {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const s of Object.values(settings) as Setting[]) options[s.flag] = { type: 'string' };
  let values: Record<string, string | boolean | undefined>;
  try {
    ({ values } = parseArgs({ args: argv, options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new ConfigurationError([`${(err as Error).message} (see --help)`]);
  }
  if (values.help) return 'help';

  const problems: string[] = [];
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings) as Array<[ConfigKey, Setting]>) {
    const fromFlag = values[s.flag] as string | undefined;
    const fromEnv = env[s.env] || (s.fallbackEnv ? env[s.fallbackEnv] : undefined) || undefined;
    let raw = fromFlag ?? fromEnv ?? s.default;
    if (key === 'podName' && raw === undefined) raw = hostname();
    const source =
      fromFlag !== undefined
        ? `--${s.flag}`
        : fromEnv !== undefined
          ? `$${env[s.env] ? s.env : s.fallbackEnv}`
          : 'the default';
    if (raw === undefined && !(s.schema as z.ZodType).safeParse(undefined).success) {
      problems.push(`--${s.flag} (or $${s.env}${s.fallbackEnv ? ` or $${s.fallbackEnv}` : ''}) is required: ${s.help}`);
      continue;
    }
    const parsed = s.schema.safeParse(raw);
    if (!parsed.success) {
      const why = parsed.error.issues.map((i) => i.message).join('; ');
      problems.push(`--${s.flag}=${JSON.stringify(raw)} (from ${source}): ${why}`);
      continue;
    }
    out[key] = parsed.data;
  }
  if (['leaseDurationMs', 'renewDeadlineMs', 'retryPeriodMs'].every((k) => k in out))
    problems.push(...checkTimings(out as unknown as OperatorConfig));
  if (problems.length > 0) throw new ConfigurationError(problems);
  return out as unknown as OperatorConfig;
}

/** The elector's invariants, stated in flag names (the elector checks them again). */
function checkTimings(c: OperatorConfig): string[] {
  const problems: string[] = [];
  if (c.leaseDurationMs % 1000 !== 0)
    problems.push(
      `--lease-duration must be a whole number of seconds (a Lease stores seconds), got ${c.leaseDurationMs} ms`,
    );
  if (!(c.leaseDurationMs > c.renewDeadlineMs)) {
    problems.push(
      `--lease-duration (${c.leaseDurationMs} ms) must be longer than --renew-deadline (${c.renewDeadlineMs} ms)`,
    );
  }
  if (!(c.renewDeadlineMs > 1.2 * c.retryPeriodMs)) {
    problems.push(
      `--renew-deadline (${c.renewDeadlineMs} ms) must be longer than 1.2 × --retry-period (${1.2 * c.retryPeriodMs} ms)`,
    );
  }
  return problems;
}
