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
