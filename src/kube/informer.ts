// A list-then-watch cache of one resource (optionally one namespace, one
// label selector), with what client-node's informer lacks: restart with
// backoff after any error, a relist on 410 Gone, watch bookmarks, a
// server-side watch timeout plus a client-side inactivity timeout (so a
// silently dead connection cannot leave the cache stale), and
// resourceVersion tracking. Runs on every replica, leader or not.
//
// Cached objects are compact copies (slim.ts): no managedFields, no
// last-applied-configuration, shared short strings. Updates sent from a
// cached copy leave the server's managedFields as they are (an update
// without the field keeps them).
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { describeError, statusCode } from './errors.ts';
import { objectKey } from './object-key.ts';
import type { KubeObject } from './object-key.ts';
import { slimInPlace } from './slim.ts';
import { watchOnce } from './watch.ts';
import type { WatchRequest } from './watch.ts';

export type EventType = 'add' | 'update' | 'delete';
export type Handler<T> = (type: EventType, obj: T) => void;

export interface ListPage<T> {
  items: T[];
  metadata?: { resourceVersion?: string; _continue?: string; continue?: string };
}

export interface InformerOptions<T> {
  kubeConfig: k8s.KubeConfig;
  /** Collection path to watch, e.g. /apis/batch/v1/namespaces/ns/jobs or /apis/batch/v1/jobs. */
  path: string;
  /** One page of the same collection (a client made with makeClient, so it has a timeout). */
  list: (page: { limit: number; _continue?: string; labelSelector?: string }) => Promise<ListPage<T>>;
  labelSelector?: string;
  logger: Logger;
  /**
   * Reduces each object to what readers need before it is stored (then
   * slimInPlace trims the result). Objects in the cache are then partial:
   * never send them back as an update.
   */
  transform?: (obj: T) => T;
  /** One secondary index (e.g. the owner's UID): byIndex(value) answers without scanning the cache. */
  indexBy?: (obj: T) => string | undefined;
  /** The watch (default watchOnce, the API server's stream); unit tests give a scripted one. */
  watch?: typeof watchOnce;
}

const PAGE = 500;

export class Informer<T extends KubeObject> {
  private readonly store = new Map<string, T>();
  /** indexBy value → keys of the objects carrying it. */
  private readonly index = new Map<string, Set<string>>();
  private readonly handlers: Handler<T>[] = [];
  private synced = false;
  private resourceVersion = '';
  private readonly o: InformerOptions<T>;

  constructor(options: InformerOptions<T>) {
    this.o = options;
  }

  on(handler: Handler<T>): void {
    this.handlers.push(handler);
  }

  get(key: string): T | undefined {
    return this.store.get(key);
  }

  list(): T[] {
    return [...this.store.values()];
  }

  /** Objects whose indexBy value is `value` (none without indexBy). */
  byIndex(value: string): T[] {
    const keys = this.index.get(value);
    if (!keys) return [];
    const out: T[] = [];
    for (const key of keys) {
      const obj = this.store.get(key);
      if (obj) out.push(obj);
    }
    return out;
  }

  hasSynced(): boolean {
    return this.synced;
  }

  /** Runs until `signal` aborts; resolves once the first list has been loaded. */
  start(signal: AbortSignal): Promise<void> {
    return new Promise((resolveSynced, rejectSynced) => {
      let failures = 0;
      const loop = async () => {
        let relist = true;
        while (!signal.aborted) {
          try {
            if (relist) {
              await this.relist(signal);
              if (!this.synced) {
                this.synced = true;
                resolveSynced();
              }
              relist = false;
            }
            const gone = await this.watchOnce(signal);
            relist = gone;
            failures = 0;
          } catch (err) {
            if (signal.aborted) break;
            failures++;
            relist = true;
            const delay = Math.min(30_000, 200 * 2 ** Math.min(failures, 8)) * (0.5 + Math.random() / 2);
            this.o.logger.warn(
              { path: this.o.path, err: describeError(err), retryInMs: Math.round(delay) },
              'Watch failed',
            );
            await sleep(delay, signal);
          }
        }
        if (!this.synced) rejectSynced(new Error(`informer for ${this.o.path} stopped before it synced`));
      };
      void loop();
    });
  }

  /** A consistent list (resourceVersion unset = quorum read), paged, replacing the store. */
  private async relist(signal: AbortSignal): Promise<void> {
    const fresh = new Map<string, T>();
    let cont = '';
    let rv = '';
    do {
      signal.throwIfAborted();
      const page: { limit: number; _continue?: string; labelSelector?: string } = { limit: PAGE };
      if (cont) page._continue = cont;
      if (this.o.labelSelector) page.labelSelector = this.o.labelSelector;
      const body = await this.o.list(page);
      for (const item of body.items) fresh.set(objectKey(item), this.slim(item));
      cont = body.metadata?._continue ?? body.metadata?.continue ?? '';
      rv = body.metadata?.resourceVersion ?? rv;
    } while (cont);
    for (const [key, old] of this.store) if (!fresh.has(key)) this.emit('delete', old, key);
    for (const [key, obj] of fresh) {
      const old = this.store.get(key);
      if (!old) this.emit('add', obj, key);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, key);
    }
    this.resourceVersion = rv;
  }

  /** One watch from the current resourceVersion; resolves true when a relist is needed (410 Gone). */
  private watchOnce(signal: AbortSignal): Promise<boolean> {
    // The server ends the watch after timeoutSeconds (and sends bookmarks,
    // about once a minute), so silence for longer than that plus a margin
    // means a dead or half-open connection (an API server that was killed, a
    // proxy that never delivers the FIN): the watch is abandoned and resumed.
    // Kept short — the server timeout at about a minute — so a stale cache
    // heals within ~80 s even when nothing reports the connection dead; the
    // controller never waits on the cache alone (it requeues at every slot).
    const serverTimeout = 50 + Math.floor(Math.random() * 15);
    const request: WatchRequest = {
      kubeConfig: this.o.kubeConfig,
      path: this.o.path,
      resourceVersion: this.resourceVersion,
      timeoutSeconds: serverTimeout,
      inactivityTimeoutMs: (serverTimeout + 15) * 1000,
    };
    if (this.o.labelSelector) request.labelSelector = this.o.labelSelector;
    return new Promise<boolean>((resolve, reject) => {
      const onEvent = (phase: string, object: unknown) => {
        const obj = object as T;
        const rv = obj.metadata?.resourceVersion;
        if (rv) this.resourceVersion = rv;
        if (phase === 'BOOKMARK') return;
        const key = objectKey(obj);
        if (phase === 'DELETED') {
          this.emit('delete', this.slim(obj), key);
        } else {
          const existed = this.store.has(key);
          this.emit(existed ? 'update' : 'add', this.slim(obj), key);
        }
      };
      const onClose = (err?: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (statusCode(err) === 410) resolve(true);
        else if (err && !signal.aborted) reject(err);
        else resolve(false);
      };
      const watch = (this.o.watch ?? watchOnce)(request, onEvent, onClose);
      const onAbort = () => watch.stop();
      signal.addEventListener('abort', onAbort, { once: true });
      if (signal.aborted) watch.stop();
    });
  }

  /** The transform first (a Job's projection drops its Pod template: no point copying it), then trimmed in place. */
  private slim(obj: T): T {
    return slimInPlace(this.o.transform ? this.o.transform(obj) : obj);
  }

  private unindex(key: string): void {
    const old = this.o.indexBy ? this.store.get(key) : undefined;
    const value = old && this.o.indexBy!(old);
    if (value === undefined) return;
    const keys = this.index.get(value);
    keys?.delete(key);
    if (keys?.size === 0) this.index.delete(value);
  }

  private emit(type: EventType, obj: T, key: string): void {
    this.unindex(key);
    if (type === 'delete') this.store.delete(key);
    else {
      this.store.set(key, obj);
      const value = this.o.indexBy?.(obj);
      if (value !== undefined) {
        let keys = this.index.get(value);
        if (!keys) this.index.set(value, (keys = new Set()));
        keys.add(key);
      }
    }
    for (const h of this.handlers) {
      try {
        h(type, obj);
      } catch (err) {
        this.o.logger.error({ err, path: this.o.path }, 'Informer handler failed');
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => (clearTimeout(timer), resolve()), { once: true });
  });
}

/** Several informers (one per namespace) seen as one cache. */
export class MultiInformer<T extends KubeObject> {
  readonly parts: Informer<T>[];

  constructor(parts: Informer<T>[]) {
    this.parts = parts;
  }

  on(handler: Handler<T>): void {
    for (const p of this.parts) p.on(handler);
  }

  get(key: string): T | undefined {
    for (const p of this.parts) {
      const hit = p.get(key);
      if (hit) return hit;
    }
    return undefined;
  }

  list(): T[] {
    return this.parts.flatMap((p) => p.list());
  }

  byIndex(value: string): T[] {
    return this.parts.flatMap((p) => p.byIndex(value));
  }

  hasSynced(): boolean {
    return this.parts.every((p) => p.hasSynced());
  }

  async start(signal: AbortSignal): Promise<void> {
    await Promise.all(this.parts.map((p) => p.start(signal)));
  }
}
