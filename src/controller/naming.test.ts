import { manualRunName, scheduledRunName } from './naming.ts';

const DNS_LABELISH = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

describe('run names', () => {
  it('are the SingletonJob name plus the slot second', () => {
    expect(scheduledRunName('payroll', new Date('2025-01-01T00:00:00Z'))).toBe('payroll-1735689600');
  });

  it('are deterministic and distinct per manual request', () => {
    expect(manualRunName('payroll', 'r1')).toBe(manualRunName('payroll', 'r1'));
    expect(manualRunName('payroll', 'r1')).not.toBe(manualRunName('payroll', 'r2'));
    expect(manualRunName('payroll', 'Any Text / at all')).toMatch(DNS_LABELISH);
  });

  it('fit 63 characters and stay distinct for long names sharing a prefix', () => {
    const a = 'a'.repeat(60) + '.x';
    const b = 'a'.repeat(60) + '.y';
    const slot = new Date('2025-01-01T00:00:00Z');
    for (const name of [scheduledRunName(a, slot), manualRunName(a, 'r'), scheduledRunName('b'.repeat(253), slot)]) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(DNS_LABELISH);
    }
    expect(scheduledRunName(a, slot)).not.toBe(scheduledRunName(b, slot));
    expect(scheduledRunName('x'.repeat(52), slot)).toBe(`${'x'.repeat(52)}-1735689600`);
  });
});
