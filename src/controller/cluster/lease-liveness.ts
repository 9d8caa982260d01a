// Another installation of the operator claiming the same SingletonJobs (two
// releases watching overlapping namespaces, or a release whose Lease name
// changed during an upgrade). Safety never depends on this file: CAS and the
// CEL rule on status.leaderTerm serialise every write. What it decides is
// liveness: which installation acts on an object, and when a survivor may
// take over from one that has gone.
//
// The rule: an object belongs to the installation whose Lease is recorded in
// status.leaderLease for as long as that Lease is alive. Alive = it exists,
// names a holder, and its resourceVersion changed within its own
// leaseDurationSeconds (plus a margin) as seen on OUR monotonic clock — never
// by comparing its renewTime with our wall clock. A survivor then raises its
// term to the revision of its own newest Lease write (later than anything the
// gone installation wrote), so tokens and terms only ever go up. A live Lease
// says the installation runs, not that it still watches the object's
// namespace: claims.ts also takes an object over from a live one that has
// left work due on it unwritten for a few lease durations (owedWork).
import type { CoordinationV1Api } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { isNotFound, statusCode } from '../../kube/errors.ts';

export interface LeaseRef {
  namespace: string;
  name: string;
}

export const leaseKey = (l: LeaseRef): string => `${l.namespace}/${l.name}`;

export interface Liveness {
  alive: boolean;
  /** The holder named by the Lease, when there is one. */
  holder?: string;
  /** Why it is judged dead or alive, for conditions, Events and logs. */
  why: string;
  /** When to look again (ms) while alive. */
  recheckMs: number;
  /** The Lease's own leaseDurationSeconds, in ms, when it could be read. */
  durationMs?: number;
}

interface Seen {
  resourceVersion: string;
  /** Monotonic ms when this resourceVersion was first seen. */
  since: number;
  durationMs: number;
  holder: string;
  /** Monotonic ms of the last GET, to share one GET among many objects. */
  fetchedAt: number;
  gone: boolean;
}

/** Grace beyond the other Lease's own duration before it counts as expired. */
const MARGIN_MS = 2000;
/** One GET per Lease per this many ms, however many objects ask. */
const FETCH_EVERY_MS = 1000;

export class KubeLeaseLiveness {
  private readonly seen = new Map<string, Seen>();
  private readonly inFlight = new Map<string, Promise<void>>();
  private forbiddenLogged = false;

  private readonly api: CoordinationV1Api;
  private readonly logger: Logger;
  private readonly monotonicNow: () => number;

  constructor(api: CoordinationV1Api, logger: Logger, monotonicNow: () => number = () => performance.now()) {
    this.api = api;
    this.logger = logger;
    this.monotonicNow = monotonicNow;
  }

  /** Judges the Lease named "namespace/name". Unknown (e.g. forbidden) counts as alive: never two actors. */
  async check(key: string): Promise<Liveness> {
    const [namespace, name] = key.split('/');
    if (!namespace || !name) return { alive: false, why: `status.leaderLease "${key}" names no Lease`, recheckMs: 0 };
    await this.refresh(key, namespace, name);
    const s = this.seen.get(key);
    if (!s) return { alive: true, why: `Lease ${key} could not be read yet`, recheckMs: FETCH_EVERY_MS };
    if (s.gone) return { alive: false, why: `Lease ${key} does not exist`, recheckMs: 0 };
    if (!s.holder) return { alive: false, holder: '', why: `Lease ${key} has been released (no holder)`, recheckMs: 0 };
    const quiet = this.monotonicNow() - s.since;
    const bound = s.durationMs + MARGIN_MS;
    if (quiet > bound)
      return {
        alive: false,
        holder: s.holder,
        why: `Lease ${key} (holder ${s.holder}) has not been renewed for ${Math.round(quiet / 1000)} s (lease duration ${s.durationMs / 1000} s)`,
        recheckMs: 0,
      };
    return {
      alive: true,
      holder: s.holder,
      why: `Lease ${key} is held by ${s.holder}`,
      recheckMs: Math.max(FETCH_EVERY_MS, Math.min(bound - quiet + 10, s.durationMs)),
      durationMs: s.durationMs,
    };
  }

  private async refresh(key: string, namespace: string, name: string): Promise<void> {
    const now = this.monotonicNow();
    const s = this.seen.get(key);
    if (s && now - s.fetchedAt < FETCH_EVERY_MS) return;
    let pending = this.inFlight.get(key);
    if (!pending) {
      pending = this.fetch(key, namespace, name).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    await pending;
  }

  private async fetch(key: string, namespace: string, name: string): Promise<void> {
    const now = this.monotonicNow();
    const prev = this.seen.get(key);
    try {
      const lease = await this.api.readNamespacedLease({ namespace, name });
      const rv = lease.metadata?.resourceVersion ?? '';
      const durationMs = (lease.spec?.leaseDurationSeconds ?? 15) * 1000;
      const holder = lease.spec?.holderIdentity ?? '';
      const since = prev && !prev.gone && prev.resourceVersion === rv ? prev.since : now;
      this.seen.set(key, { resourceVersion: rv, since, durationMs, holder, fetchedAt: now, gone: false });
    } catch (err) {
      if (isNotFound(err)) {
        this.seen.set(key, { resourceVersion: '', since: now, durationMs: 0, holder: '', fetchedAt: now, gone: true });
        return;
      }
      if (statusCode(err) === 403 && !this.forbiddenLogged) {
        this.forbiddenLogged = true;
        this.logger.error(
          { lease: key },
          "Cannot read another installation's Lease (403): objects it wrote are left to it; grant get on leases cluster-wide (the chart does) so this installation can take them over once it has gone",
        );
      }
      // Unknown: keep the last judgement (or none → alive); never act on a guess.
      if (prev) prev.fetchedAt = now;
    }
  }
}
