// One watch request (a stream of changes after a resourceVersion), the one
// place that drives client-node's Watch. Callers decide what to do when it
// ends (resume, relist, back off); this file only makes the ending reliable:
// - `onClose` is called exactly once, and no event is delivered after it;
// - `stop()` ends the watch at once (it calls `onClose()` without an error);
// - an ERROR event ends the watch: `onClose` gets an Error with the Status's
//   `code` (410 Gone: the resourceVersion is too old, list again);
// - an HTTP failure carries its status as `code`, like an ApiException, so
//   `statusCode()` (errors.ts) reads both;
// - the client-side inactivity timeout is a parameter. client-node keeps it
//   in a private field, 30 s by default, which also bounds the wait for the
//   response headers; a quiet watch (no event for 30 s) would be cut and
//   re-established over and over, so each caller sets it from its server-side
//   timeout and bookmark interval.
import * as k8s from '@kubernetes/client-node';

export interface WatchRequest {
  kubeConfig: k8s.KubeConfig;
  /** Collection path, e.g. /apis/batch/v1/namespaces/ns/jobs or /apis/batch/v1/jobs. */
  path: string;
  /** Changes after this resourceVersion ("" = from the current state, with synthetic ADDED events). */
  resourceVersion: string;
  /** The server ends the watch normally after this many seconds (onClose without an error). */
  timeoutSeconds: number;
  /** Silence for this long (no event, no bookmark) aborts the watch as dead (onClose with a TimeoutError). */
  inactivityTimeoutMs: number;
  labelSelector?: string;
  fieldSelector?: string;
}

/** ADDED, MODIFIED, DELETED or BOOKMARK (ERROR events end the watch instead). */
export type WatchEventHandler = (type: string, object: unknown) => void;

export interface WatchHandle {
  stop(): void;
}

/** Starts one watch with bookmarks. `onClose(err)` is called once: no error when the server or `stop()` ended it. */
export function watchOnce(
  request: WatchRequest,
  onEvent: WatchEventHandler,
  onClose: (err?: unknown) => void,
): WatchHandle {
  const watch = new k8s.Watch(request.kubeConfig);
  (watch as unknown as { requestTimeoutMs: number }).requestTimeoutMs = request.inactivityTimeoutMs;
  const query: Record<string, string | number | boolean> = {
    resourceVersion: request.resourceVersion,
    allowWatchBookmarks: true,
    timeoutSeconds: request.timeoutSeconds,
  };
  if (request.labelSelector) query.labelSelector = request.labelSelector;
  if (request.fieldSelector) query.fieldSelector = request.fieldSelector;

  let closed = false;
  let controller: AbortController | undefined;
  const close = (err?: unknown) => {
    if (closed) return;
    closed = true;
    controller?.abort();
    onClose(withCode(err));
  };
  watch
    .watch(
      request.path,
      query,
      (type: string, object: unknown) => {
        if (closed) return;
        if (type !== 'ERROR') return onEvent(type, object);
        const status = object as { code?: number; message?: string };
        close(
          Object.assign(new Error(`watch ${request.path}: ${status.message ?? 'error event'}`), { code: status.code }),
        );
      },
      (err: unknown) => close(err),
    )
    .then(
      (c) => {
        controller = c;
        if (closed) c.abort();
      },
      (err: unknown) => close(err),
    );
  return { stop: () => close() };
}

// client-node reports a failed watch request with `statusCode`; the rest of the code reads `code`.
function withCode(err: unknown): unknown {
  if (err === null || err === undefined) return undefined;
  const status = (err as { statusCode?: unknown }).statusCode;
  if (typeof status === 'number' && (err as { code?: unknown }).code === undefined)
    return Object.assign(err as object, { code: status });
  return err;
}
