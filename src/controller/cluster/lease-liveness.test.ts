// Another installation's Lease judged on our monotonic clock: alive while its
// resourceVersion keeps changing within its duration (plus a margin), gone
// when deleted, released or silent; unknown (a refused read) counts as alive.
import type { CoordinationV1Api, V1Lease } from '@kubernetes/client-node';
import pino from 'pino';
import { KubeLeaseLiveness } from './lease-liveness.ts';

function api() {
  let lease: V1Lease | Error | undefined;
  let reads = 0;
  const fake = {
    readNamespacedLease: async () => {
      reads++;
      if (lease instanceof Error) throw lease;
      if (!lease) throw Object.assign(new Error('not found'), { code: 404 });
      return structuredClone(lease);
    },
  } as unknown as CoordinationV1Api;
  return {
    fake,
    set: (rv: string | Error | undefined, holder = 'them', seconds = 15) => {
      lease =
        typeof rv === 'string'
          ? { metadata: { resourceVersion: rv }, spec: { holderIdentity: holder, leaseDurationSeconds: seconds } }
          : rv;
    },
    reads: () => reads,
  };
}

describe('KubeLeaseLiveness', () => {
  const silent = pino({ level: 'silent' });

  it('is alive while renewed, and gone once silent for its duration plus the margin, on the monotonic clock', async () => {
    let now = 0;
    const a = api();
    const liveness = new KubeLeaseLiveness(a.fake, silent, () => now);
    a.set('1');
    expect(await liveness.check('ops/other')).toMatchObject({ alive: true, holder: 'them', durationMs: 15_000 });
    now = 10_000;
    a.set('2'); // renewed
    expect(await liveness.check('ops/other')).toMatchObject({ alive: true });
    now = 10_000 + 17_000; // 17 s unchanged: within 15 s + 2 s
    expect((await liveness.check('ops/other')).alive).toBe(true);
    now = 10_000 + 17_001;
    expect(await liveness.check('ops/other')).toMatchObject({ alive: false, holder: 'them' });
  });

  it('shares one GET a second among the objects that ask', async () => {
    const now = 0;
    const a = api();
    a.set('1');
    const liveness = new KubeLeaseLiveness(a.fake, silent, () => now);
    await Promise.all([liveness.check('ops/other'), liveness.check('ops/other'), liveness.check('ops/other')]);
    await liveness.check('ops/other');
    expect(a.reads()).toBe(1);
  });

  it('is gone when deleted or released, and when the key names no Lease', async () => {
    let now = 0;
    const a = api();
    const liveness = new KubeLeaseLiveness(a.fake, silent, () => now);
    a.set(undefined);
    expect(await liveness.check('ops/other')).toMatchObject({ alive: false, why: 'Lease ops/other does not exist' });
    now = 5000;
    a.set('3', '');
    expect(await liveness.check('ops/other')).toMatchObject({
      alive: false,
      why: 'Lease ops/other has been released (no holder)',
    });
    expect((await liveness.check('nonsense')).alive).toBe(false);
  });

  it('keeps its last judgement when a read fails, and counts a Lease never read as alive (never two actors)', async () => {
    let now = 0;
    const a = api();
    const liveness = new KubeLeaseLiveness(a.fake, silent, () => now);
    a.set(Object.assign(new Error('forbidden'), { code: 403 }));
    expect((await liveness.check('ops/other')).alive).toBe(true);
    a.set('1');
    now = 2000;
    expect((await liveness.check('ops/other')).alive).toBe(true);
    a.set(Object.assign(new Error('timeout'), { code: 504 }));
    now = 4000;
    expect((await liveness.check('ops/other')).alive).toBe(true);
  });
});
