import { judgeTokenDomain } from './token-domain.ts';

describe('judgeTokenDomain: the term and the SingletonJobs share one revision counter', () => {
  it('one etcd: a list sent after the Lease write carries a revision at least the term', () => {
    expect(judgeTokenDomain(5000, '5000')).toEqual({ ok: true });
    expect(judgeTokenDomain(5000, '123456')).toEqual({ ok: true });
  });

  it('Leases in an etcd of their own whose counter is ahead: refused, saying why and what to do', () => {
    const v = judgeTokenDomain(9_000_000, '41000');
    expect(v.ok).toBe(false);
    expect(!v.ok && v.reason).toMatch(
      /leader term 9000000 .* above the resourceVersion 41000 .*different revision counters.*etcd-servers-overrides/,
    );
  });

  it('nothing to compare (no list resourceVersion, not decimal): proves nothing either way, so it does not refuse', () => {
    expect(judgeTokenDomain(5000, undefined)).toEqual({ ok: true });
    expect(judgeTokenDomain(5000, 'abc')).toEqual({ ok: true });
  });
});
