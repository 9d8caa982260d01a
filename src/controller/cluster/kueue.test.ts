// Whether the API server serves Kueue's API, asked by discovery: one read for
// every caller while it is in flight (a stampede's reconcile workers ask at
// once), the answer kept for a minute, an unanswered read taken as "served"
// (the operator then asks Kueue's webhook by a dry run, as without discovery).
import type { ApisApi, BatchV1Api, CustomObjectsApi, V1APIGroupList } from '@kubernetes/client-node';
import pino from 'pino';
import { KUEUE_GROUP, KubeKueue } from './kueue.ts';

function discovery(groups: string[] | Error) {
  let reads = 0;
  let answer!: () => void;
  const gate = new Promise<void>((r) => (answer = r));
  const apis = {
    getAPIVersions: async (): Promise<V1APIGroupList> => {
      reads++;
      await gate;
      if (groups instanceof Error) throw groups;
      return { groups: groups.map((name) => ({ name, versions: [] })) } as V1APIGroupList;
    },
  } as unknown as ApisApi;
  const kueue = new KubeKueue({} as CustomObjectsApi, {} as BatchV1Api, pino({ level: 'silent' }), apis);
  return { kueue, reads: () => reads, answer };
}

describe('KubeKueue.served', () => {
  it('asks once for all callers in flight and keeps the answer', async () => {
    const d = discovery(['batch', 'apps']);
    const asks = Array.from({ length: 16 }, () => d.kueue.served());
    d.answer();
    expect(await Promise.all(asks)).toEqual(Array(16).fill(false));
    expect(await d.kueue.served()).toBe(false);
    expect(d.reads()).toBe(1);
  });

  it('says served when the group is listed', async () => {
    const d = discovery(['batch', KUEUE_GROUP]);
    d.answer();
    expect(await d.kueue.served()).toBe(true);
  });

  it('takes an unanswered read as served, and asks again next time', async () => {
    const d = discovery(new Error('connection refused'));
    d.answer();
    expect(await d.kueue.served()).toBe(true);
    expect(await d.kueue.served()).toBe(true);
    expect(d.reads()).toBe(2);
  });

  it('without discovery, always served', async () => {
    const kueue = new KubeKueue({} as CustomObjectsApi, {} as BatchV1Api, pino({ level: 'silent' }));
    expect(await kueue.served()).toBe(true);
  });
});
