// Read-your-writes over an informer: our write wins until the watch shows it
// (or something newer), then the informer's copy is the one again.
import type { EventType } from './informer.ts';
import { MutationCache } from './mutation-cache.ts';

interface Obj {
  metadata: { name: string; namespace: string; uid: string; resourceVersion: string };
}
const obj = (rv: string, uid = 'u1'): Obj => ({ metadata: { name: 'a', namespace: 'ns', uid, resourceVersion: rv } });

function informer() {
  const items = new Map<string, Obj>();
  const handlers: ((type: EventType, o: Obj) => void)[] = [];
  return {
    get: (key: string) => items.get(key),
    on: (h: (type: EventType, o: Obj) => void) => void handlers.push(h),
    deliver(type: EventType, o: Obj) {
      if (type === 'delete') items.delete('ns/a');
      else items.set('ns/a', o);
      for (const h of handlers) h(type, o);
    },
  };
}

describe('MutationCache', () => {
  it('returns our write until the informer delivers it, then drops its copy', () => {
    const inf = informer();
    const cache = new MutationCache<Obj>(inf);
    inf.deliver('add', obj('10'));
    cache.mutated(obj('12'));
    expect(cache.get('ns/a')?.metadata.resourceVersion).toBe('12');
    inf.deliver('update', obj('11')); // an older event still on its way
    expect(cache.get('ns/a')?.metadata.resourceVersion).toBe('12');
    expect(cache.size).toBe(1);
    inf.deliver('update', obj('12'));
    expect(cache.get('ns/a')?.metadata.resourceVersion).toBe('12');
    expect(cache.size).toBe(0);
  });

  it('keeps nothing when the watch delivered the write before its response arrived', () => {
    const inf = informer();
    const cache = new MutationCache<Obj>(inf);
    inf.deliver('add', obj('12'));
    cache.mutated(obj('12'));
    expect(cache.size).toBe(0);
  });

  it('yields to a newer write of someone else, and to a re-created object (another UID)', () => {
    const inf = informer();
    const cache = new MutationCache<Obj>(inf);
    inf.deliver('add', obj('10'));
    cache.mutated(obj('12'));
    inf.deliver('update', obj('13'));
    expect(cache.get('ns/a')?.metadata.resourceVersion).toBe('13');
    cache.mutated(obj('20'));
    inf.deliver('delete', obj('20'));
    expect(cache.size).toBe(0);
    inf.deliver('add', obj('5', 'u2'));
    cache.mutated(obj('30', 'u1')); // a late response about the deleted object
    expect(cache.get('ns/a')?.metadata.uid).toBe('u2');
  });

  it('answers nothing for an object the informer does not have, and forgets on request', () => {
    const inf = informer();
    const cache = new MutationCache<Obj>(inf);
    cache.mutated(obj('12'));
    expect(cache.get('ns/a')).toBeUndefined();
    cache.forget('ns/a');
    expect(cache.size).toBe(0);
  });
});
