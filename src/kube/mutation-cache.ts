// Read-your-writes over an informer, in the spirit of client-go's
// tools/cache/mutation_cache.go: after we write an object, the informer may
// not show that write yet, and deciding from the older copy would repeat or
// undo it. We keep our own newest copy until the watch has delivered that
// resourceVersion (or a later one), then drop it — the informer's copy is
// the one to trust again, and 10,000 duplicated objects would be memory for
// nothing. The cache listens to the informer itself: nobody else has to
// forward events to it.
import type { EventType } from './informer.ts';
import { objectKey } from './object-key.ts';
import type { KubeObject } from './object-key.ts';
import { newerThan } from './resource-version.ts';

/** What the mutation cache needs of an informer. */
export interface ObservedStore<T> {
  get(key: string): T | undefined;
  on(handler: (type: EventType, obj: T) => void): void;
}

export class MutationCache<T extends KubeObject> {
  private readonly store: ObservedStore<T>;
  private readonly ours = new Map<string, T>();

  constructor(store: ObservedStore<T>) {
    this.store = store;
    store.on((type, obj) => this.observed(objectKey(obj), type === 'delete' ? undefined : obj));
  }

  /** The newest copy we know of: our write while the informer has not caught up with it, else the informer's. */
  get(key: string): T | undefined {
    const cached = this.store.get(key);
    const mine = this.ours.get(key);
    if (!cached) return undefined;
    if (
      mine &&
      mine.metadata?.uid === cached.metadata?.uid &&
      newerThan(mine.metadata?.resourceVersion, cached.metadata?.resourceVersion)
    )
      return mine;
    if (mine) this.ours.delete(key); // the informer caught up, or the object was replaced
    return cached;
  }

  /** Records the response of our write (kept until the informer shows it). */
  mutated(obj: T): void {
    const key = objectKey(obj);
    this.ours.set(key, obj);
    // The watch may have delivered this write before its response arrived.
    this.observed(key, this.store.get(key));
  }

  /** Forgets our copy of `key` (the object is gone). */
  forget(key: string): void {
    this.ours.delete(key);
  }

  /** Copies held: for tests and the memory benchmark. */
  get size(): number {
    return this.ours.size;
  }

  private observed(key: string, obj: T | undefined): void {
    const mine = this.ours.get(key);
    if (mine && (!obj || !newerThan(mine.metadata?.resourceVersion, obj.metadata?.resourceVersion)))
      this.ours.delete(key);
  }
}
