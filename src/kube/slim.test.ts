import { LAST_APPLIED, intern, slimInPlace } from './slim.ts';

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
  spec: {
    schedule: '0 3 * * *',
    suspend: false,
    jobTemplate: { spec: { template: { spec: { containers: [{ name: 'main', image: 'pay:1', args: ['--all'] }] } } } },
  },
  status: {
    currentToken: 7,
    recentRuns: [{ name: 'payroll-1', slot: '2026-11-25T03:00:00Z', finishedTime: new Date('2026-11-25T03:01:00Z') }],
    note: null,
  },
});

describe('slimInPlace', () => {
  it('drops managedFields and the last-applied annotation in place and keeps everything else', () => {
    const input = sj();
    const slim = slimInPlace(input);
    expect(slim).toBe(input);
    expect(slim.metadata.managedFields).toBeUndefined();
    expect(slim.metadata.annotations).toEqual({ 'singleton.dev/run-now': 'req-1' });
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the test walks arbitrary JSON
    const expected = sj() as Record<string, any>;
    delete expected.metadata.managedFields;
    delete expected.metadata.annotations[LAST_APPLIED];
    expect(JSON.parse(JSON.stringify(slim))).toEqual(JSON.parse(JSON.stringify(expected)));
    expect(slim.status.recentRuns[0]!.finishedTime).toEqual(new Date('2026-11-25T03:01:00Z'));
    expect(slim.status.note).toBeNull();
  });

  it('leaves annotations without last-applied as they are', () => {
    const input = { metadata: { name: 'x', annotations: { a: '1' } } };
    const annotations = input.metadata.annotations;
    expect(slimInPlace(input).metadata.annotations).toBe(annotations);
  });

  it('drops only the top-level metadata fields (a nested "managedFields" key is data)', () => {
    const obj = {
      metadata: { name: 'x' },
      spec: { metadata: { managedFields: 'keep', annotations: { [LAST_APPLIED]: 'keep' } } },
    };
    expect(slimInPlace(structuredClone(obj))).toEqual(obj);
  });

  it('keeps a "__proto__" key that JSON.parse made an own property as data', () => {
    const text =
      '{"metadata":{"name":"x","annotations":{"__proto__":"a","kubectl.kubernetes.io/last-applied-configuration":"{}"}},"spec":{"__proto__":"str","nested":{"__proto__":{"polluted":true}}}}';
    const slim = slimInPlace(
      JSON.parse(text) as { metadata: { annotations: Record<string, string> }; spec: Record<string, unknown> },
    );
    expect(Object.keys(slim.spec)).toEqual(['__proto__', 'nested']);
    expect(Object.getPrototypeOf(slim.spec)).toBe(Object.prototype);
    expect(Object.getPrototypeOf(slim.metadata.annotations)).toBe(Object.prototype);
    expect(Object.keys(slim.metadata.annotations)).toEqual(['__proto__']);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(JSON.stringify(slim)).toBe(
      JSON.stringify(JSON.parse(text.replace(',"kubectl.kubernetes.io/last-applied-configuration":"{}"', ''))),
    );
  });

  it('interns strings to equal values, including ones that look like array indexes', () => {
    for (const s of [
      '',
      'a',
      '0',
      '12345',
      '17 3 1 1 *',
      'x'.repeat(96),
      'y'.repeat(97),
      '__proto__',
      'constructor',
      'ünïcödé ✓',
    ]) {
      expect(intern(s)).toBe(s);
    }
  });
});
