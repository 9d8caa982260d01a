import { ConfigError, makeIdentity, resolveTimings, validateConfig, type LeaderElectionConfig } from './config.ts';
import { compareResourceVersions, termFromResourceVersion, termProblem, TermError } from './token.ts';
import { acquisitionTime, formatMicroTime, recordFromLease } from './lock.ts';

const base: LeaderElectionConfig = {
  kubeConfig: {} as never,
  namespace: 'ns',
  name: 'singleton-operator',
  identity: 'pod-0_abc',
};

describe('timings', () => {
  it('defaults to client-go core component timings and a request timeout of max(1 s, renewDeadline/2)', () => {
    expect(resolveTimings({})).toEqual({
      leaseDurationMs: 15_000,
      renewDeadlineMs: 10_000,
      retryPeriodMs: 2_000,
      safetyMarginMs: 1_500,
      stallThresholdMs: 2_000,
      requestTimeoutMs: 5_000,
    });
    expect(resolveTimings({ leaseDurationMs: 4000, renewDeadlineMs: 1500, retryPeriodMs: 1000 }).requestTimeoutMs).toBe(
      1000,
    );
  });

  it.each([
    [
      { leaseDurationMs: 10_000, renewDeadlineMs: 10_000 },
      'leaseDurationMs (10000) must be greater than renewDeadlineMs (10000)',
    ],
    [
      { renewDeadlineMs: 2_400, retryPeriodMs: 2_000 },
      'renewDeadlineMs (2400) must be greater than 1.2 × retryPeriodMs (2400)',
    ],
    [{ leaseDurationMs: 15_500 }, 'leaseDurationMs must be a whole number of seconds'],
    [{ retryPeriodMs: -1 }, 'retryPeriodMs must be a positive number of milliseconds, got -1'],
    [
      { safetyMarginMs: 14_000 },
      'safetyMarginMs (14000) must be at least 0 and less than leaseDurationMs − retryPeriodMs (13000)',
    ],
  ])('rejects %j with a readable message', (timings, message) => {
    expect(() => resolveTimings(timings)).toThrow(ConfigError);
    expect(() => resolveTimings(timings)).toThrow(message);
  });

  it('names every problem of a config at once', () => {
    const bad = { ...base, identity: '', name: 'Not_A_Name', leaseDurationMs: 1000 };
    expect(() => validateConfig(bad)).toThrow(
      /Lease ns\/Not_A_Name: name "Not_A_Name" is not a valid Lease name.*identity is required.*leaseDurationMs \(1000\) must be greater than renewDeadlineMs/,
    );
  });

  it('makes unique identities from a pod name', () => {
    const a = makeIdentity('op-7d9f-abcde');
    expect(a).toMatch(/^op-7d9f-abcde_[0-9a-f]{10}$/);
    expect(makeIdentity('op-7d9f-abcde')).not.toBe(a);
    expect(() => makeIdentity('')).toThrow(ConfigError);
  });
});

describe('fencing terms', () => {
  it('are the resourceVersion as an integer', () => {
    expect(termFromResourceVersion('1')).toBe(1);
    expect(termFromResourceVersion('9007199254740991')).toBe(2 ** 53 - 1);
  });

  it.each([
    ['9007199254740992'],
    ['18446744073709551615'],
    [''],
    [undefined],
    ['0'],
    ['012'],
    ['abc'],
    ['1e5'],
    ['-3'],
  ])('refuse %p', (rv) => {
    expect(() => termFromResourceVersion(rv)).toThrow(TermError);
    expect(termProblem(rv)).toEqual(expect.stringContaining('cannot be a fencing term'));
  });

  it('say why, naming the value', () => {
    expect(termProblem('9007199254740991')).toBeUndefined();
    expect(termProblem('9007199254740992')).toBe(
      'the Lease resourceVersion 9007199254740992 is not below 2^53, so it cannot be a fencing term (a term must survive JSON and CEL without rounding)',
    );
    expect(termProblem('AAAxyz=')).toMatch(
      /^the Lease resourceVersion "AAAxyz=" is not a positive decimal integer, so it cannot be a fencing term \(needs Kubernetes ≥ 1\.35 on etcd/,
    );
  });

  it('compare resourceVersions as integers, not as strings or floats', () => {
    expect(compareResourceVersions('10', '9')).toBe(1);
    expect(compareResourceVersions('9007199254740993', '9007199254740992')).toBe(1);
    expect(compareResourceVersions('5', '5')).toBe(0);
    expect(compareResourceVersions('abc', '5')).toBeUndefined();
  });
});

describe('MicroTime', () => {
  it('is written as Kubernetes writes it: UTC with six fractional digits', () => {
    expect(formatMicroTime(Date.UTC(2030, 0, 2, 3, 4, 5, 678))).toBe('2030-01-02T03:04:05.678000Z');
    expect(formatMicroTime(Date.UTC(2030, 0, 2, 3, 4, 5, 678) + 0.25)).toBe('2030-01-02T03:04:05.678250Z');
  });

  it('of an acquisition keeps the millisecond and carries a random nonce 001–999 in the microseconds (never the 000 of a whole-millisecond writer)', () => {
    const ms = Date.UTC(2030, 0, 2, 3, 4, 5, 678);
    expect(acquisitionTime(ms + 0.9, () => 0)).toBe('2030-01-02T03:04:05.678001Z');
    expect(acquisitionTime(ms, () => 0.5)).toBe('2030-01-02T03:04:05.678500Z');
    expect(acquisitionTime(ms, () => 0.999_999_999)).toBe('2030-01-02T03:04:05.678999Z');
    const seen = new Set(Array.from({ length: 200 }, () => acquisitionTime(ms)));
    for (const t of seen) expect(t).toMatch(/^2030-01-02T03:04:05\.678(?!000)\d{3}Z$/);
    expect(seen.size).toBeGreaterThan(150);
  });

  it('is read back whether client-node hands over a string or a Date', () => {
    const r1 = recordFromLease({ spec: { holderIdentity: 'x', renewTime: '2030-01-02T03:04:05.678901Z' as never } });
    expect(r1.renewTime).toBe('2030-01-02T03:04:05.678901Z');
    const r2 = recordFromLease({ spec: { renewTime: new Date(Date.UTC(2030, 0, 2)) as never } });
    expect(r2).toEqual({
      holderIdentity: '',
      leaseDurationSeconds: 0,
      leaseTransitions: 0,
      renewTime: '2030-01-02T00:00:00.000000Z',
    });
  });
});
