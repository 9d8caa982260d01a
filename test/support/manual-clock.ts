// A clock for tests of the elector: it moves only when told to (see
// src/election/clock.ts for the Clock contract the real clocks implement).
import type { Clock, TimerHandle } from '../../src/election/clock.ts';

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
      const next = this.timers.reduce<ManualTimer | undefined>(
        (a, t) => (t.due <= target && (!a || t.due < a.due) ? t : a),
        undefined,
      );
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
