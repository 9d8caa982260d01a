import { ApiException } from '@kubernetes/client-node';
import { apiMessage, describeError, statusCode } from './errors.ts';

const status = (code: number, reason: string, message: string) => ({ kind: 'Status', apiVersion: 'v1', status: 'Failure', code, reason, message });

describe('describeError', () => {
  it('names the status code, reason and message of a code client-node does not know ("Unknown API Status Code!")', () => {
    // client-node keeps the body as text for codes its OpenAPI spec does not list for the operation.
    const body = JSON.stringify(status(403, 'Forbidden', 'leases.coordination.k8s.io "singleton-operator" is forbidden: User "op" cannot update resource "leases"'));
    const err = new ApiException(403, 'Unknown API Status Code!', body, { 'content-type': 'application/json' });
    expect(err.message).toContain('Unknown API Status Code!');
    expect(describeError(err)).toBe('HTTP 403 Forbidden: leases.coordination.k8s.io "singleton-operator" is forbidden: User "op" cannot update resource "leases"');
    expect(statusCode(err)).toBe(403);
  });

  it('reads a body client-node parsed into a V1Status', () => {
    const err = new ApiException(409, 'Conflict', status(409, 'Conflict', 'the object has been modified; please apply your changes to the latest version and try again'), {});
    expect(describeError(err)).toBe('HTTP 409 Conflict: the object has been modified; please apply your changes to the latest version and try again');
    expect(apiMessage(err)).toBe('the object has been modified; please apply your changes to the latest version and try again');
  });

  it('keeps a body that is not JSON, and says the code alone when there is no body', () => {
    expect(describeError(new ApiException(502, 'Unknown API Status Code!', '<html>Bad Gateway</html>', {}))).toBe('HTTP 502: <html>Bad Gateway</html>');
    expect(describeError(new ApiException(429, 'Unknown API Status Code!', '', {}))).toBe('HTTP 429');
    expect(describeError(new ApiException(500, 'Unknown API Status Code!', undefined, {}))).toBe('HTTP 500');
  });

  it('adds the cause of a network failure', () => {
    const refused = new TypeError('fetch failed', { cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }) });
    expect(describeError(refused)).toBe('fetch failed (ECONNREFUSED)');
    expect(describeError(new Error('request timed out', { cause: new Error('aborted after 5000 ms') }))).toBe('request timed out: aborted after 5000 ms');
    expect(describeError(new Error('plain'))).toBe('plain');
    expect(describeError('a string')).toBe('a string');
  });
});
