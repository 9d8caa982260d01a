// The informer's cache against a scripted list and watch: a paged consistent
// list replaces the store (adds, updates by resourceVersion, deletes of what
// is gone), watch events keep it and its resourceVersion current (bookmarks
// move only the resourceVersion), the next watch resumes from the newest
// resourceVersion seen, a 410 Gone relists, the secondary index follows every
// change, and a handler that throws does not stop the others.
import type * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { Informer, type ListPage } from './informer.ts';
import type { WatchEventHandler, WatchRequest } from './watch.ts';

interface Obj {
  metadata: { namespace: string; name: string; resourceVersion: string; labels?: Record<string, string> };
}
const obj = (name: string, rv: string, owner = 'o1'): Obj => ({
  metadata: { namespace: 'ns', name, resourceVersion: rv, labels: { owner } },
});

/** A watch the test drives: each call is one watch, held open until the test closes it. */
function scriptedWatch() {
  const calls: { request: WatchRequest; send: WatchEventHandler; close: (err?: unknown) => void }[] = [];
  let arrived: (() => void) | undefined;
  const watch = (request: WatchRequest, send: WatchEventHandler, close: (err?: unknown) => void) => {
    calls.push({ request, send, close });
    arrived?.();
    return { stop: () => close() };
  };
  /** Resolves once the n-th watch (1-based) is open. */
  const opened = (n: number) =>
    new Promise<(typeof calls)[number]>((resolve) => {
      const check = () => (calls.length >= n ? resolve(calls[n - 1]!) : (arrived = check));
      check();
    });
  return { watch, calls, opened };
}

function setup(pages: () => ListPage<Obj>[]) {
  const lists: { _continue?: string; labelSelector?: string }[] = [];
  const w = scriptedWatch();
  const informer = new Informer<Obj>({
    kubeConfig: {} as k8s.KubeConfig,
    path: '/api/v1/namespaces/ns/things',
    labelSelector: 'app=x',
    logger: pino({ level: 'silent' }),
    indexBy: (o) => o.metadata.labels?.owner,
    list: async (page) => {
      lists.push(page);
      const all = pages();
      const at = page._continue ? Number(page._continue) : 0;
      return all[at]!;
    },
    watch: w.watch,
  });
  const events: string[] = [];
  informer.on((type, o) => events.push(`${type} ${o.metadata.name}@${o.metadata.resourceVersion}`));
  return { informer, lists, events, ...w };
}

const names = (xs: Obj[]) => xs.map((o) => o.metadata.name).sort();

describe('Informer', () => {
  it('lists page by page, then watches from the list’s resourceVersion; events keep the cache and the index', async () => {
    const s = setup(() => [
      { items: [obj('a', '1')], metadata: { continue: '1' } },
      { items: [obj('b', '2', 'o2')], metadata: { resourceVersion: '10' } },
    ]);
    const ac = new AbortController();
    await s.informer.start(ac.signal);
    expect(s.informer.hasSynced()).toBe(true);
    expect(s.lists).toEqual([
      { limit: 500, labelSelector: 'app=x' },
      { limit: 500, labelSelector: 'app=x', _continue: '1' },
    ]);
    expect(s.events).toEqual(['add a@1', 'add b@2']);
    const first = await s.opened(1);
    expect(first.request).toMatchObject({
      path: '/api/v1/namespaces/ns/things',
      resourceVersion: '10',
      labelSelector: 'app=x',
    });

    first.send('MODIFIED', obj('a', '11', 'o2'));
    first.send('ADDED', obj('c', '12'));
    first.send('DELETED', obj('b', '13', 'o2'));
    first.send('BOOKMARK', { metadata: { resourceVersion: '20' } });
    expect(s.events.slice(2)).toEqual(['update a@11', 'add c@12', 'delete b@13']);
    expect(names(s.informer.list())).toEqual(['a', 'c']);
    expect(s.informer.get('ns/a')?.metadata.resourceVersion).toBe('11');
    expect(names(s.informer.byIndex('o2'))).toEqual(['a']);
    expect(names(s.informer.byIndex('o1'))).toEqual(['c']);

    // The server ends the watch: the next resumes from the bookmark's resourceVersion, no relist.
    first.close();
    const second = await s.opened(2);
    expect(second.request.resourceVersion).toBe('20');
    expect(s.lists).toHaveLength(2);
    ac.abort();
  });

  it('relists on 410 Gone: what is gone is deleted, what changed updated, the rest left as it was', async () => {
    let generation = 0;
    const s = setup(() =>
      generation === 0
        ? [{ items: [obj('a', '1'), obj('b', '2'), obj('c', '3')], metadata: { resourceVersion: '10' } }]
        : [{ items: [obj('a', '1'), obj('c', '30'), obj('d', '31')], metadata: { resourceVersion: '40' } }],
    );
    const ac = new AbortController();
    await s.informer.start(ac.signal);
    generation = 1;
    (await s.opened(1)).close(Object.assign(new Error('too old resource version'), { code: 410 }));
    const second = await s.opened(2);
    expect(second.request.resourceVersion).toBe('40');
    expect(s.events.slice(3)).toEqual(['delete b@2', 'update c@30', 'add d@31']);
    expect(names(s.informer.list())).toEqual(['a', 'c', 'd']);
    ac.abort();
  });

  it('a handler that throws does not keep the others from the event', async () => {
    const s = setup(() => [{ items: [], metadata: { resourceVersion: '1' } }]);
    const seen: string[] = [];
    s.informer.on(() => {
      throw new Error('handler bug');
    });
    s.informer.on((type, o) => seen.push(`${type} ${o.metadata.name}`));
    const ac = new AbortController();
    await s.informer.start(ac.signal);
    (await s.opened(1)).send('ADDED', obj('a', '2'));
    expect(seen).toEqual(['add a']);
    ac.abort();
  });

  it('stopped before its first list, start() rejects saying so', async () => {
    const ac = new AbortController();
    const informer = new Informer<Obj>({
      kubeConfig: {} as k8s.KubeConfig,
      path: '/api/v1/things',
      logger: pino({ level: 'silent' }),
      list: () => {
        ac.abort();
        return Promise.reject(new Error('aborted'));
      },
    });
    await expect(informer.start(ac.signal)).rejects.toThrow('informer for /api/v1/things stopped before it synced');
  });
});
