// An in-memory Lease store for unit tests: compare-and-swap on a revision
// counter that, like etcd's, never goes back (also across delete/create),
// watches that replay from a revision, and per-client faults (an unreachable
// API server, a crashed process). Each elector gets its own client. An etcd
// restore without --bump-revision (backup/restore) is the one way to make the
// revision go back, as in a real cluster.
import type { LeaseEvent, LeaseLock, LeaseRecord, LeaseSnapshot, LeaseWatch } from '../../src/election/lock.ts';

class HttpError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

export interface FakeWrite {
  client: string;
  verb: 'create' | 'update' | 'delete';
  record?: LeaseRecord;
  resourceVersion: string;
}

interface Watcher {
  client: FakeLeaseClient;
  onEvent: (event: LeaseEvent) => void;
  onClose: (err?: unknown) => void;
}

/** The store's state at one revision, as an etcd backup holds it. */
export interface FakeBackup {
  revision: bigint;
  lease: { record: LeaseRecord; resourceVersion: string } | undefined;
  events: number;
}

export class FakeLeaseStore {
  private revision: bigint;
  private lease: { record: LeaseRecord; resourceVersion: string } | undefined;
  private events: { revision: bigint; event: LeaseEvent }[] = [];
  private watchers = new Set<Watcher>();
  readonly writes: FakeWrite[] = [];
  /** Every request, in order: `${client} ${verb}`. */
  readonly requests: string[] = [];

  constructor(firstRevision = 100n) {
    this.revision = firstRevision;
  }

  client(name: string): FakeLeaseClient {
    return new FakeLeaseClient(this, name);
  }

  current(): LeaseSnapshot | undefined {
    return this.lease && { record: { ...this.lease.record }, resourceVersion: this.lease.resourceVersion };
  }

  /** A write by someone outside the test's electors (kubectl, another operator version). */
  put(record: LeaseRecord, client = 'outsider'): LeaseSnapshot {
    return this.commit(client, this.lease ? 'update' : 'create', record);
  }

  delete(client = 'outsider'): void {
    if (!this.lease) return;
    this.lease = undefined;
    const rv = String(++this.revision);
    this.writes.push({ client, verb: 'delete', resourceVersion: rv });
    this.emit({ type: 'deleted', resourceVersion: rv });
  }

  backup(): FakeBackup {
    return {
      revision: this.revision,
      lease: this.lease && { record: { ...this.lease.record }, resourceVersion: this.lease.resourceVersion },
      events: this.events.length,
    };
  }

  /**
   * Restores a backup as `etcdutl snapshot restore` without --bump-revision
   * followed by an API-server restart does: the revision and the Lease go back
   * to the backup's, and every open watch ends with an error.
   */
  restore(backup: FakeBackup): void {
    this.revision = backup.revision;
    this.lease = backup.lease && { record: { ...backup.lease.record }, resourceVersion: backup.lease.resourceVersion };
    this.events.length = backup.events;
    this.breakWatches(new Error('connection reset (API server restarted)'));
  }

  /** Ends every open watch with an error (as an API-server restart does). */
  breakWatches(err: unknown = new Error('connection reset')): void {
    for (const w of [...this.watchers]) this.closeWatch(w, err);
  }

  writesBy(client: string): FakeWrite[] {
    return this.writes.filter((w) => w.client === client);
  }

  // ---- used by FakeLeaseClient ----

  request(client: FakeLeaseClient, verb: string): void {
    this.requests.push(`${client.name} ${verb}`);
    if (client.down) throw new Error(`connect ECONNREFUSED (fake API server unreachable from ${client.name})`);
  }

  list(): { lease: LeaseSnapshot | undefined; resourceVersion: string } {
    return { lease: this.current(), resourceVersion: String(this.revision) };
  }

  create(client: string, record: LeaseRecord): LeaseSnapshot {
    if (this.lease) throw new HttpError(409, 'leases.coordination.k8s.io already exists');
    return this.commit(client, 'create', record);
  }

  update(client: string, record: LeaseRecord, resourceVersion: string): LeaseSnapshot {
    // As the real API server: a PUT of a Lease that does not exist creates it,
    // whatever resourceVersion it carries (leases allow create-on-update).
    if (!this.lease) return this.commit(client, 'create', record);
    if (this.lease.resourceVersion !== resourceVersion) {
      throw new HttpError(
        409,
        'Operation cannot be fulfilled on leases.coordination.k8s.io: the object has been modified',
      );
    }
    return this.commit(client, 'update', record);
  }

  watch(
    client: FakeLeaseClient,
    from: string,
    onEvent: (e: LeaseEvent) => void,
    onClose: (err?: unknown) => void,
  ): LeaseWatch {
    const watcher: Watcher = { client, onEvent, onClose };
    const start = BigInt(from);
    if (start > this.revision) {
      // What the API server answers when the revision went back under the client.
      this.watchers.add(watcher);
      this.closeWatch(
        watcher,
        new HttpError(504, `Timeout: Too large resource version: ${from}, current: ${this.revision}`),
      );
      return { stop: () => void this.watchers.delete(watcher) };
    }
    const backlog = this.events.filter((e) => e.revision > start);
    this.watchers.add(watcher);
    queueMicrotask(() => {
      if (client.down) return this.closeWatch(watcher, new Error('connection refused'));
      for (const e of backlog) if (this.watchers.has(watcher)) watcher.onEvent(e.event);
    });
    return { stop: () => void this.watchers.delete(watcher) };
  }

  closeWatchesOf(client: FakeLeaseClient, err: unknown): void {
    for (const w of [...this.watchers]) if (w.client === client) this.closeWatch(w, err);
  }

  private closeWatch(w: Watcher, err: unknown): void {
    if (!this.watchers.delete(w)) return;
    queueMicrotask(() => w.onClose(err));
  }

  private commit(client: string, verb: 'create' | 'update', record: LeaseRecord): LeaseSnapshot {
    if (record.leaseDurationSeconds <= 0) throw new HttpError(422, 'spec.leaseDurationSeconds: must be greater than 0');
    if (record.leaseTransitions < 0)
      throw new HttpError(422, 'spec.leaseTransitions: must be greater than or equal to 0');
    const resourceVersion = String(++this.revision);
    this.lease = { record: { ...record }, resourceVersion };
    this.writes.push({ client, verb, record: { ...record }, resourceVersion });
    this.emit({ type: 'upsert', lease: this.current()! });
    return this.current()!;
  }

  private emit(event: LeaseEvent): void {
    this.events.push({ revision: this.revision, event });
    for (const w of [...this.watchers]) {
      if (w.client.down) continue;
      queueMicrotask(() => this.watchers.has(w) && w.onEvent(event));
    }
  }
}

export class FakeLeaseClient implements LeaseLock {
  readonly name: string;
  private readonly store: FakeLeaseStore;
  private isDown = false;

  constructor(store: FakeLeaseStore, name: string) {
    this.store = store;
    this.name = name;
  }

  get down(): boolean {
    return this.isDown;
  }

  /** Cuts this client off (requests fail, watches end) or reconnects it. */
  setDown(down: boolean): void {
    this.isDown = down;
    if (down) this.store.closeWatchesOf(this, new Error('connection reset'));
  }

  describe(): string {
    return 'test/lease';
  }

  async list(): Promise<{ lease: LeaseSnapshot | undefined; resourceVersion: string }> {
    await Promise.resolve();
    this.store.request(this, 'list');
    return this.store.list();
  }

  async get(): Promise<LeaseSnapshot | undefined> {
    await Promise.resolve();
    this.store.request(this, 'get');
    return this.store.current();
  }

  async create(record: LeaseRecord): Promise<LeaseSnapshot> {
    await Promise.resolve();
    this.store.request(this, 'create');
    return this.store.create(this.name, record);
  }

  async update(record: LeaseRecord, base: LeaseSnapshot): Promise<LeaseSnapshot> {
    await Promise.resolve();
    this.store.request(this, 'update');
    return this.store.update(this.name, record, base.resourceVersion);
  }

  watch(resourceVersion: string, onEvent: (event: LeaseEvent) => void, onClose: (err?: unknown) => void): LeaseWatch {
    this.store.requests.push(`${this.name} watch`);
    return this.store.watch(this, resourceVersion, onEvent, onClose);
  }
}
