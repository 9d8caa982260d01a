import { LAST_APPLIED, intern, slimObject } from './slim.ts';

const sj = () => ({
  apiVersion: 'singleton.dev/v1alpha1',
  kind: 'SingletonJob',
  metadata: {
    name: 'payroll',
    namespace: 'pay',
    generation: 3,
    labels: { team: 'pay' },
    annotations: { [LAST_APPLIED]: '{"apiVersion":"singleton.dev/v1alpha1"}', 'singleton.dev/run-now': 'req-1' },
    managedFields: [{ manager: 'kubectl', operation: 'Apply', fieldsV1: { 'f:spec': {} } }],
  },
  spec: { schedule: '0 3 * * *', suspend: false, jobTemplate: { spec: { template: { spec: { containers: [{ name: 'main', image: 'pay:1', args: ['--all'] }] } } } } },
  status: { currentToken: 7, recentRuns: [{ name: 'payroll-1', slot: '2026-11-25T03:00:00Z', finishedTime: new Date('2026-11-25T03:01:00Z') }], note: null },
});

describe('slimObject', () => {
  it('keeps everything but managedFields and the last-applied annotation, and leaves the input alone', () => {
    const input = sj();
    const slim = slimObject(input);
    const expected = sj() as Record<string, any>;
    delete expected.metadata.managedFields;
    delete expected.metadata.annotations[LAST_APPLIED];
    expect(slim).toEqual(expected);
    expect(input).toEqual(sj());
    expect(slim.metadata).not.toBe(input.metadata);
    expect(slim.status.recentRuns[0]!.finishedTime).toEqual(new Date('2026-11-25T03:01:00Z'));
  });

  it('drops only the top-level metadata fields (a nested "managedFields" key is data)', () => {
    const obj = { metadata: { name: 'x' }, spec: { metadata: { managedFields: 'keep' } } };
    expect(slimObject(obj)).toEqual(obj);
  });

  it('copies a "__proto__" key that JSON.parse made an own property as data', () => {
    const obj = JSON.parse('{"metadata":{"name":"x"},"spec":{"__proto__":{"polluted":true}}}') as { metadata: { name: string }; spec: Record<string, unknown> };
    const slim = slimObject(obj);
    expect(Object.keys(slim.spec)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(slim.spec)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(slim)).toBe(JSON.stringify(obj));
  });

  it('interns strings to equal values, including ones that look like array indexes', () => {
    for (const s of ['', 'a', '0', '12345', '17 3 1 1 *', 'x'.repeat(96), 'y'.repeat(97), '__proto__', 'constructor', 'ünïcödé ✓']) {
      expect(intern(s)).toBe(s);
    }
  });
});
