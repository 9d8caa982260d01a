// Configuration of a LeaderElector: defaults, validation with readable
// messages, and the identity convention. Timings follow client-go's core
// components (15 s lease, 10 s renew deadline, 2 s retry period) and the same
// invariant: leaseDuration > renewDeadline > 1.2 × retryPeriod.
import { randomBytes } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import type { Clock } from './clock.ts';
import type { HolderEvidence } from './evidence.ts';
import type { LeaseLock } from './lock.ts';

export interface LeaderElectionConfig {
  kubeConfig: KubeConfig;
  namespace: string;
  /** Name of the Lease object. */
  name: string;
  /** Unique per process: use makeIdentity(podName). */
  identity: string;
  /** How long a standby waits, from when it last saw the Lease change, before taking it over. Default 15000. */
  leaseDurationMs?: number;
  /** The leader steps down if it could not renew for this long. Default 10000. */
  renewDeadlineMs?: number;
  /** Renew interval of the leader, and retry interval after errors. Default 2000. */
  retryPeriodMs?: number;
  /** Release the Lease (after the guarded work stopped) when run() is cancelled. Default true. */
  releaseOnCancel?: boolean;
  /**
   * The leader stops acting at sendTimeOfLastSuccessfulRenew + leaseDuration − safetyMargin.
   * Default: 10 % of the lease duration, at least 100 ms.
   */
  safetyMarginMs?: number;
  /**
   * A timer of the leader that fires this much later than scheduled means the
   * event loop stalled (GC pause, SIGSTOP, CPU starvation): leadership is
   * dropped. Default: max(1000, retryPeriod).
   */
  stallThresholdMs?: number;
  clock?: Clock;
  logger?: Logger;
  /** Where to register the election metrics; none are registered without it. */
  registry?: Registry;
  /** Replaces the Kubernetes Lease lock (unit tests). */
  lock?: LeaseLock;
  /**
   * Evidence from outside the Lease that its holder's process is dead (the
   * kubelet's Pod status: pod-evidence.ts). With it a standby takes over at
   * once instead of at the lease's expiry; without it, expiry is the rule.
   */
  evidence?: HolderEvidence;
}

export interface ResolvedTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
  safetyMarginMs: number;
  stallThresholdMs: number;
  /** Per-request timeout: max(1 s, renewDeadline / 2), as client-go. */
  requestTimeoutMs: number;
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

const IDENTITY_MAX = 253;

/** `${podName}_${random suffix}`: unique even when a pod restarts in place with the same name. */
export function makeIdentity(podName: string): string {
  if (!podName) throw new ConfigError('makeIdentity: the pod name is empty');
  return `${podName}_${randomBytes(5).toString('hex')}`;
}

function positiveInteger(value: number, field: string): number {
  if (!Number.isFinite(value) || value <= 0)
    throw new ConfigError(`${field} must be a positive number of milliseconds, got ${value}`);
  return value;
}

/** Applies defaults and checks the timings; throws ConfigError naming every problem. */
export function resolveTimings(config: Partial<LeaderElectionConfig>): ResolvedTimings {
  const problems: string[] = [];
  const check = (value: number | undefined, fallback: number, field: string): number => {
    try {
      return positiveInteger(value ?? fallback, field);
    } catch (err) {
      problems.push((err as Error).message);
      return fallback;
    }
  };
  const leaseDurationMs = check(config.leaseDurationMs, 15_000, 'leaseDurationMs');
  const renewDeadlineMs = check(config.renewDeadlineMs, 10_000, 'renewDeadlineMs');
  const retryPeriodMs = check(config.retryPeriodMs, 2_000, 'retryPeriodMs');
  if (leaseDurationMs % 1000 !== 0) {
    problems.push(
      `leaseDurationMs must be a whole number of seconds (the Lease stores seconds), got ${leaseDurationMs}`,
    );
  }
  if (!(leaseDurationMs > renewDeadlineMs)) {
    problems.push(`leaseDurationMs (${leaseDurationMs}) must be greater than renewDeadlineMs (${renewDeadlineMs})`);
  }
  if (!(renewDeadlineMs > 1.2 * retryPeriodMs)) {
    problems.push(
      `renewDeadlineMs (${renewDeadlineMs}) must be greater than 1.2 × retryPeriodMs (${1.2 * retryPeriodMs})`,
    );
  }
  const safetyMarginMs = config.safetyMarginMs ?? Math.max(100, leaseDurationMs / 10);
  if (!(safetyMarginMs >= 0 && safetyMarginMs < leaseDurationMs - retryPeriodMs)) {
    problems.push(
      `safetyMarginMs (${safetyMarginMs}) must be at least 0 and less than leaseDurationMs − retryPeriodMs (${leaseDurationMs - retryPeriodMs})`,
    );
  }
  const stallThresholdMs = config.stallThresholdMs ?? Math.max(1000, retryPeriodMs);
  if (!(stallThresholdMs > 0)) problems.push(`stallThresholdMs must be positive, got ${stallThresholdMs}`);
  if (problems.length > 0) throw new ConfigError(`invalid leader election timings: ${problems.join('; ')}`);
  return {
    leaseDurationMs,
    renewDeadlineMs,
    retryPeriodMs,
    safetyMarginMs,
    stallThresholdMs,
    requestTimeoutMs: Math.max(1000, renewDeadlineMs / 2),
  };
}

/** Validates the whole configuration (names, identity, timings). */
export function validateConfig(config: LeaderElectionConfig): ResolvedTimings {
  const problems: string[] = [];
  if (!config.lock && !config.kubeConfig) problems.push('kubeConfig is required');
  if (!config.namespace) problems.push('namespace is required');
  if (!config.name) problems.push('name (the Lease name) is required');
  else if (!/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(config.name) || config.name.length > 253) {
    problems.push(`name "${config.name}" is not a valid Lease name (lower-case DNS subdomain)`);
  }
  if (!config.identity) problems.push('identity is required (use makeIdentity(podName))');
  else if (config.identity.length > IDENTITY_MAX) problems.push(`identity is longer than ${IDENTITY_MAX} characters`);
  let timings: ResolvedTimings | undefined;
  try {
    timings = resolveTimings(config);
  } catch (err) {
    problems.push((err as Error).message);
  }
  if (problems.length > 0 || !timings)
    throw new ConfigError(
      `invalid leader election config for Lease ${config.namespace}/${config.name}: ${problems.join('; ')}`,
    );
  return timings;
}
