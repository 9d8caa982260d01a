// The elector's only sources of time. Lease expiry and self-fencing are judged
// on the monotonic clock (performance.now(): it keeps running while the
// process is stopped and never jumps with NTP or a manual date change); the
// wall clock is used only to stamp renewTime/acquireTime for humans reading
// `kubectl get lease -o yaml`. Injecting a Clock makes the unit tests
// deterministic and lets a test skew one replica's wall clock.

export type TimerHandle = { readonly id: number } | ReturnType<typeof setTimeout>;

export interface Clock {
  /** Monotonic milliseconds (arbitrary origin). */
  now(): number;
  /** Wall-clock milliseconds since the epoch. */
  wallNow(): number;
  setTimeout(fn: () => void, ms: number): TimerHandle;
  clearTimeout(handle: TimerHandle | undefined): void;
}

export const realClock: Clock = {
  now: () => performance.now(),
  wallNow: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, Math.max(0, ms)),
  clearTimeout: (handle) => {
    if (handle !== undefined) clearTimeout(handle as ReturnType<typeof setTimeout>);
  },
};

/** The real clock with the wall clock shifted by `offsetMs` (simulated clock skew). */
export function skewedClock(offsetMs: number, base: Clock = realClock): Clock {
  return { ...base, wallNow: () => base.wallNow() + offsetMs };
}

interface ManualTimer {
  id: number;
  due: number;
  fn: () => void;
}

/**
 * A clock that moves only when told to. `advance()` fires due timers in order
 * and lets promise continuations run between them, so code built on timers and
 * promises behaves as it would in real time, without sleeping.
 */
export class ManualClock implements Clock {
  private mono: number;
  private wallOffset: number;
  private timers: ManualTimer[] = [];
  private nextId = 1;

  constructor(start: { mono?: number; wall?: number } = {}) {
    this.mono = start.mono ?? 1_000_000;
    this.wallOffset = (start.wall ?? Date.UTC(2030, 0, 1)) - this.mono;
  }

  now(): number {
    return this.mono;
  }

  wallNow(): number {
    return this.mono + this.wallOffset;
  }

  /** Jumps the wall clock only (an NTP step or a skewed node); monotonic time is unaffected. */
  setWallOffset(deltaMs: number): void {
    this.wallOffset += deltaMs;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer = { id: this.nextId++, due: this.mono + Math.max(0, ms), fn };
    this.timers.push(timer);
    return { id: timer.id };
  }

  clearTimeout(handle: TimerHandle | undefined): void {
    if (handle === undefined || typeof handle !== 'object' || !('id' in handle)) return;
    this.timers = this.timers.filter((t) => t.id !== handle.id);
  }

  pendingTimers(): number {
    return this.timers.length;
  }

  /** Moves time forward by `ms`, firing every timer that falls due, in order. */
  async advance(ms: number): Promise<void> {
    const target = this.mono + ms;
    await settle();
    for (;;) {
      const next = this.timers.reduce<ManualTimer | undefined>((a, t) => (t.due <= target && (!a || t.due < a.due) ? t : a), undefined);
      if (!next) break;
      this.timers = this.timers.filter((t) => t !== next);
      this.mono = Math.max(this.mono, next.due);
      next.fn();
      await settle();
    }
    this.mono = target;
    await settle();
  }

  /**
   * Moves time forward by `ms` without firing anything on the way, as when the
   * process was stopped (SIGSTOP) or the event loop was blocked; overdue timers
   * fire on the next `advance()`.
   */
  jump(ms: number): void {
    this.mono += ms;
  }
}

/** Lets every pending promise continuation run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
