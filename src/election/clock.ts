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
