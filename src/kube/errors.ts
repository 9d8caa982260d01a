// Small predicates over client-node's ApiException, written once.
import { ApiException } from '@kubernetes/client-node';

export function statusCode(err: unknown): number | undefined {
  if (err instanceof ApiException) return err.code;
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'number' ? code : undefined;
}

export const isNotFound = (err: unknown): boolean => statusCode(err) === 404;
export const isConflict = (err: unknown): boolean => statusCode(err) === 409;
/** AlreadyExists is a 409 on create; callers know which verb they used. */
export const isAlreadyExists = (err: unknown): boolean => statusCode(err) === 409;
export const isInvalid = (err: unknown): boolean => statusCode(err) === 422;
export const isForbidden = (err: unknown): boolean => statusCode(err) === 403;

/** Errors worth retrying later: timeouts, throttling, server-side trouble, connection failures. */
export function isTransient(err: unknown): boolean {
  const code = statusCode(err);
  if (code === undefined) return true;
  return code === 408 || code === 429 || code >= 500;
}

/** The API server's human-readable message, when there is one. */
export function apiMessage(err: unknown): string {
  if (err instanceof ApiException) {
    const body = err.body as unknown;
    if (typeof body === 'string') {
      try {
        const parsed = JSON.parse(body) as { message?: string };
        if (parsed.message) return parsed.message;
      } catch {
        return body;
      }
    }
    if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
    return `HTTP ${err.code}`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** The API server's Status (kind Status) carried by an ApiException, whether client-node parsed the body or not. */
function apiStatus(err: ApiException<unknown>): { reason?: string; message?: string } | undefined {
  let body = err.body as unknown;
  if (typeof body === 'string') {
    const text = body.trim();
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      return text ? { message: text } : undefined;
    }
  }
  if (!body || typeof body !== 'object') return undefined;
  const { reason, message } = body as { reason?: unknown; message?: unknown };
  return {
    ...(typeof reason === 'string' && reason ? { reason } : {}),
    ...(typeof message === 'string' && message ? { message } : {}),
  };
}

/**
 * One line for a log: for an API error its HTTP status, the API server's
 * reason and message ("HTTP 403 Forbidden: leases ... is forbidden: ..."),
 * never client-node's own text — for status codes its OpenAPI spec does not
 * list (a 403 or 401 while an API server warms up, a 429) that text is
 * "Unknown API Status Code!" followed by a dump of the headers. Other errors:
 * their message, with the cause's code for network failures ("fetch failed (ECONNREFUSED)").
 */
export function describeError(err: unknown): string {
  if (err instanceof ApiException) {
    const status = apiStatus(err);
    const head = `HTTP ${err.code}${status?.reason ? ` ${status.reason}` : ''}`;
    return status?.message ? `${head}: ${status.message}` : head;
  }
  if (err instanceof Error) {
    const cause = (err as { cause?: { code?: unknown; message?: unknown } }).cause;
    const code = typeof cause?.code === 'string' ? cause.code : undefined;
    const causeMessage = typeof cause?.message === 'string' ? cause.message : undefined;
    if (code && !err.message.includes(code)) return `${err.message} (${code})`;
    if (!code && causeMessage && !err.message.includes(causeMessage)) return `${err.message}: ${causeMessage}`;
    return err.message;
  }
  return String(err);
}
