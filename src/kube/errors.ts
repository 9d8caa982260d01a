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

/**
 * The API server refused the request itself — malformed (400), forbidden by
 * RBAC, an admission webhook or policy, or a quota (403), invalid (422) — as
 * opposed to failing to answer it (5xx, a timeout). Sent again unchanged it
 * gets the same answer until something else changes (a quota frees up, a
 * policy is edited). A terminating namespace's 403 is one too: callers that
 * treat it apart test isNamespaceTerminating first.
 */
export function isRefusal(err: unknown): boolean {
  const code = statusCode(err);
  return code === 400 || code === 403 || code === 422;
}

/**
 * A create refused because its namespace is being deleted: the
 * NamespaceLifecycle admission plugin's 403 with the cause type
 * `NamespaceTerminating` ("unable to create new content in namespace X
 * because it is being terminated"). Nothing about the object is wrong and
 * nothing it could do helps; the namespace's work is simply over.
 */
export function isNamespaceTerminating(err: unknown): boolean {
  if (statusCode(err) !== 403) return false;
  const status = statusOf((err as { body?: unknown } | undefined)?.body);
  if (status?.causes?.some((c) => c.reason === 'NamespaceTerminating')) return true;
  // A body without details (a proxy, a client that dropped them): the plugin's own words.
  const message = status?.message ?? (err instanceof Error ? err.message : '');
  return /unable to create new content in namespace \S+ because it is being terminated/.test(message);
}

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

interface StatusBody {
  reason?: string;
  message?: string;
  /** metav1.StatusCause: its Go field `Type` is `reason` on the wire. */
  causes?: { reason?: string; message?: string; field?: string }[];
}

/** The API server's Status (kind Status) carried by an ApiException, whether client-node parsed the body or not. */
function apiStatus(err: ApiException<unknown>): StatusBody | undefined {
  return statusOf(err.body as unknown);
}

/** A Status from a response body: JSON text, a parsed object, or plain text (its message). */
function statusOf(raw: unknown): StatusBody | undefined {
  let body = raw;
  if (typeof body === 'string') {
    const text = body.trim();
    try {
      body = JSON.parse(text) as unknown;
    } catch {
      return text ? { message: text } : undefined;
    }
  }
  if (!body || typeof body !== 'object') return undefined;
  const { reason, message, details } = body as { reason?: unknown; message?: unknown; details?: { causes?: unknown } };
  const causes = Array.isArray(details?.causes)
    ? (details.causes as unknown[]).filter(
        (c): c is NonNullable<StatusBody['causes']>[number] => !!c && typeof c === 'object',
      )
    : undefined;
  return {
    ...(typeof reason === 'string' && reason ? { reason } : {}),
    ...(typeof message === 'string' && message ? { message } : {}),
    ...(causes?.length ? { causes } : {}),
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
