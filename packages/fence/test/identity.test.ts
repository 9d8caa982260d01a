import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { IdentityError, parseDownwardApiFile, readRunIdentity } from '../src/index.ts';

const operatorEnv = (): Record<string, string> => ({
  SINGLETON_FENCING_TOKEN: '4711',
  SINGLETON_LEADER_TERM: '4700',
  SINGLETON_JOB_NAME: 'nightly-payroll',
  SINGLETON_JOB_NAMESPACE: 'payroll',
  SINGLETON_JOB_KEY: 'payroll/nightly-payroll',
  SINGLETON_RUN_NAME: 'nightly-payroll-29384720',
  SINGLETON_RUN_SLOT: '2026-11-30T23:00:00Z',
  SINGLETON_RUN_REQUEST_ID: '',
  SINGLETON_ATTEMPT: '2',
});

function identityError(env: Record<string, string | undefined>, annotationsFile?: string): IdentityError {
  try {
    readRunIdentity({ env, ...(annotationsFile ? { annotationsFile } : {}) });
  } catch (error) {
    expect(error).toBeInstanceOf(IdentityError);
    return error as IdentityError;
  }
  throw new Error('readRunIdentity accepted it');
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fence-identity-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('readRunIdentity from the environment the operator sets', () => {
  it('reads every field; an empty slot or request id is undefined', () => {
    expect(readRunIdentity({ env: operatorEnv() })).toEqual({
      token: 4711,
      term: 4700,
      jobName: 'nightly-payroll',
      jobNamespace: 'payroll',
      jobKey: 'payroll/nightly-payroll',
      runName: 'nightly-payroll-29384720',
      slot: '2026-11-30T23:00:00Z',
      requestId: undefined,
      attempt: 2,
    });
    const manual = readRunIdentity({
      env: { ...operatorEnv(), SINGLETON_RUN_SLOT: '', SINGLETON_RUN_REQUEST_ID: 'rerun-1' },
    });
    expect(manual).toMatchObject({ slot: undefined, requestId: 'rerun-1' });
  });

  it('accepts the largest token below 2^53', () => {
    expect(readRunIdentity({ env: { ...operatorEnv(), SINGLETON_FENCING_TOKEN: '9007199254740991' } }).token).toBe(
      Number.MAX_SAFE_INTEGER,
    );
  });

  it.each([
    'SINGLETON_FENCING_TOKEN',
    'SINGLETON_LEADER_TERM',
    'SINGLETON_JOB_NAME',
    'SINGLETON_JOB_NAMESPACE',
    'SINGLETON_JOB_KEY',
    'SINGLETON_RUN_NAME',
    'SINGLETON_ATTEMPT',
  ])('refuses a missing or empty %s and names it', (variable) => {
    for (const value of [undefined, '']) {
      const error = identityError({ ...operatorEnv(), [variable]: value });
      expect(error).toMatchObject({ variable, reason: 'missing' });
      expect(error.message).toContain(variable);
    }
  });

  it.each([
    ['SINGLETON_FENCING_TOKEN', '0'],
    ['SINGLETON_FENCING_TOKEN', '-5'],
    ['SINGLETON_FENCING_TOKEN', '12abc'],
    ['SINGLETON_FENCING_TOKEN', '1e3'],
    ['SINGLETON_FENCING_TOKEN', ' 42'],
    ['SINGLETON_FENCING_TOKEN', '0042'],
    ['SINGLETON_FENCING_TOKEN', '4.5'],
    ['SINGLETON_FENCING_TOKEN', '9007199254740992'],
    ['SINGLETON_FENCING_TOKEN', '18446744073709551616'],
    ['SINGLETON_LEADER_TERM', 'abc'],
    ['SINGLETON_ATTEMPT', '0'],
    ['SINGLETON_RUN_SLOT', 'tonight'],
    ['SINGLETON_RUN_SLOT', '2026-13-45T99:00:00Z'],
  ])('refuses %s=%j as malformed', (variable, value) => {
    const error = identityError({ ...operatorEnv(), [variable]: value });
    expect(error).toMatchObject({ variable, reason: 'malformed' });
    expect(error.message).toContain(variable);
  });

  it('says why a token of 2^53 or more is refused', () => {
    expect(identityError({ ...operatorEnv(), SINGLETON_FENCING_TOKEN: '9007199254740992' }).message).toBe(
      'SINGLETON_FENCING_TOKEN is malformed: 9007199254740992 is not below 2^53',
    );
  });

  it('refuses a key that is not namespace/name', () => {
    const error = identityError({ ...operatorEnv(), SINGLETON_JOB_KEY: 'nightly-payroll' });
    expect(error).toMatchObject({ variable: 'SINGLETON_JOB_KEY', reason: 'inconsistent' });
  });
});

describe('the downward-API annotations file', () => {
  const annotations = (lines: string[]) => {
    const file = path.join(dir, `annotations-${Math.random()}`);
    writeFileSync(file, lines.join('\n'));
    return file;
  };
  const good = [
    'kubectl.kubernetes.io/default-container="work"',
    'singleton.dev/fencing-token="4711"',
    'singleton.dev/leader-term="4700"',
    'singleton.dev/singletonjob="nightly-payroll"',
    'singleton.dev/attempt="2"',
  ];

  it('parses the kubelet format: sorted key="value" lines with Go escapes', () => {
    const parsed = parseDownwardApiFile(
      ['a="plain"', 'b="say \\"hi\\"\\n\\ttab \\\\ done"', 'c="caf\\u00e9 \\xc3\\xa9 \\303\\251 ü"', 'd=""'].join('\n'),
    );
    expect(Object.fromEntries(parsed)).toEqual({ a: 'plain', b: 'say "hi"\n\ttab \\ done', c: 'café é é ü', d: '' });
  });

  it('is read from $SINGLETON_PODINFO_ANNOTATIONS and agrees with the environment', () => {
    const file = annotations(good);
    expect(readRunIdentity({ env: { ...operatorEnv(), SINGLETON_PODINFO_ANNOTATIONS: file } }).token).toBe(4711);
    expect(readRunIdentity({ env: operatorEnv(), annotationsFile: file }).attempt).toBe(2);
  });

  it('refuses a token that differs from the environment, naming the annotation', () => {
    const file = annotations(good.map((l) => l.replace('"4711"', '"4712"')));
    expect(identityError(operatorEnv(), file)).toMatchObject({
      variable: 'singleton.dev/fencing-token',
      reason: 'inconsistent',
    });
  });

  it('refuses a file without the fencing token annotation', () => {
    const file = annotations(good.filter((l) => !l.startsWith('singleton.dev/fencing-token')));
    expect(identityError(operatorEnv(), file)).toMatchObject({
      variable: 'singleton.dev/fencing-token',
      reason: 'missing',
    });
  });

  it('refuses a malformed file and a missing file, naming SINGLETON_PODINFO_ANNOTATIONS', () => {
    expect(identityError(operatorEnv(), annotations(['singleton.dev/fencing-token=4711']))).toMatchObject({
      variable: 'SINGLETON_PODINFO_ANNOTATIONS',
      reason: 'malformed',
    });
    expect(identityError(operatorEnv(), annotations(['a="unterminated \\"'])).reason).toBe('malformed');
    expect(identityError(operatorEnv(), path.join(dir, 'absent'))).toMatchObject({
      variable: 'SINGLETON_PODINFO_ANNOTATIONS',
      reason: 'missing',
    });
  });
});
