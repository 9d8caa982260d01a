import { manualRunName, scheduledRunName } from './naming.ts';

const DNS_LABELISH = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;

describe('run names', () => {
  it('are the SingletonJob name plus the slot second', () => {
    expect(scheduledRunName('payroll', new Date('2025-01-01T00:00:00Z'))).toBe('payroll-1735689600');
  });

  it('are deterministic and distinct per manual request and token (a repeated request id is a new name)', () => {
    expect(manualRunName('payroll', 'r1', 7)).toBe(manualRunName('payroll', 'r1', 7));
    expect(manualRunName('payroll', 'r1', 7)).not.toBe(manualRunName('payroll', 'r2', 7));
    expect(manualRunName('payroll', 'r1', 7)).not.toBe(manualRunName('payroll', 'r1', 9));
    expect(manualRunName('payroll', 'Any Text / at all', 1)).toMatch(DNS_LABELISH);
  });

  it('give each retry attempt of a slot its own name', () => {
    const slot = new Date('2025-01-01T00:00:00Z');
    expect(scheduledRunName('payroll', slot, 1)).toBe('payroll-1735689600');
    expect(scheduledRunName('payroll', slot, 2)).toBe('payroll-1735689600-2');
    expect(scheduledRunName('y'.repeat(253), slot, 3)).toMatch(/-1735689600-3$/);
  });

  it('fit 63 characters and stay distinct for long names sharing a prefix', () => {
    const a = 'a'.repeat(60) + '.x';
    const b = 'a'.repeat(60) + '.y';
    const slot = new Date('2025-01-01T00:00:00Z');
    for (const name of [
      scheduledRunName(a, slot),
      manualRunName(a, 'r', 123456789),
      scheduledRunName('b'.repeat(253), slot),
    ]) {
      expect(name.length).toBeLessThanOrEqual(63);
      expect(name).toMatch(DNS_LABELISH);
    }
    expect(scheduledRunName(a, slot)).not.toBe(scheduledRunName(b, slot));
    expect(scheduledRunName('x'.repeat(52), slot)).toBe(`${'x'.repeat(52)}-1735689600`);
  });
});
