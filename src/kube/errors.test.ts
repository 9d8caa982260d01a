import { ApiException } from '@kubernetes/client-node';
import { apiMessage, describeError, isNamespaceTerminating, isRefusal, statusCode } from './errors.ts';

const status = (code: number, reason: string, message: string) => ({
  kind: 'Status',
  apiVersion: 'v1',
  status: 'Failure',
  code,
  reason,
  message,
});

describe('describeError', () => {
  it('names the status code, reason and message of a code client-node does not know ("Unknown API Status Code!")', () => {
    // client-node keeps the body as text for codes its OpenAPI spec does not list for the operation.
    const body = JSON.stringify(
      status(
        403,
        'Forbidden',
        'leases.coordination.k8s.io "singleton-operator" is forbidden: User "op" cannot update resource "leases"',
      ),
    );
    const err = new ApiException(403, 'Unknown API Status Code!', body, { 'content-type': 'application/json' });
    expect(err.message).toContain('Unknown API Status Code!');
    expect(describeError(err)).toBe(
      'HTTP 403 Forbidden: leases.coordination.k8s.io "singleton-operator" is forbidden: User "op" cannot update resource "leases"',
    );
    expect(statusCode(err)).toBe(403);
  });

  it('reads a body client-node parsed into a V1Status', () => {
    const err = new ApiException(
      409,
      'Conflict',
      status(
        409,
        'Conflict',
        'the object has been modified; please apply your changes to the latest version and try again',
      ),
      {},
    );
    expect(describeError(err)).toBe(
      'HTTP 409 Conflict: the object has been modified; please apply your changes to the latest version and try again',
    );
    expect(apiMessage(err)).toBe(
      'the object has been modified; please apply your changes to the latest version and try again',
    );
  });

  it('keeps a body that is not JSON, and says the code alone when there is no body', () => {
    expect(describeError(new ApiException(502, 'Unknown API Status Code!', '<html>Bad Gateway</html>', {}))).toBe(
      'HTTP 502: <html>Bad Gateway</html>',
    );
    expect(describeError(new ApiException(429, 'Unknown API Status Code!', '', {}))).toBe('HTTP 429');
    expect(describeError(new ApiException(500, 'Unknown API Status Code!', undefined, {}))).toBe('HTTP 500');
  });

  it('adds the cause of a network failure', () => {
    const refused = new TypeError('fetch failed', {
      cause: Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:6443'), { code: 'ECONNREFUSED' }),
    });
    expect(describeError(refused)).toBe('fetch failed (ECONNREFUSED)');
    expect(describeError(new Error('request timed out', { cause: new Error('aborted after 5000 ms') }))).toBe(
      'request timed out: aborted after 5000 ms',
    );
    expect(describeError(new Error('plain'))).toBe('plain');
    expect(describeError('a string')).toBe('a string');
  });
});

describe('isNamespaceTerminating', () => {
  // What the NamespaceLifecycle admission plugin answers a create in a namespace being deleted.
  const terminating = {
    ...status(
      403,
      'Forbidden',
      'jobs.batch "sj-1" is forbidden: unable to create new content in namespace team-a because it is being terminated',
    ),
    details: {
      name: 'sj-1',
      group: 'batch',
      kind: 'jobs',
      causes: [
        {
          reason: 'NamespaceTerminating',
          message: 'namespace team-a is being terminated',
          field: 'metadata.namespace',
        },
      ],
    },
  };

  it('recognises the 403 by its cause, whether client-node parsed the body or kept it as text', () => {
    expect(
      isNamespaceTerminating(new ApiException(403, 'Unknown API Status Code!', JSON.stringify(terminating), {})),
    ).toBe(true);
    expect(isNamespaceTerminating(new ApiException(403, 'Forbidden', terminating, {}))).toBe(true);
    // The fakes' errors (a plain Error with code and body).
    expect(isNamespaceTerminating(Object.assign(new Error('forbidden'), { code: 403, body: terminating }))).toBe(true);
  });

  it("recognises the plugin's message when the body has no details", () => {
    const bare = status(
      403,
      'Forbidden',
      'jobs.batch "sj-1" is forbidden: unable to create new content in namespace team-a because it is being terminated',
    );
    expect(isNamespaceTerminating(new ApiException(403, 'Forbidden', bare, {}))).toBe(true);
  });

  it('is not any other refusal: a quota, RBAC, an invalid object', () => {
    const quota = status(
      403,
      'Forbidden',
      'jobs.batch "sj-1" is forbidden: exceeded quota: jobs, requested: count/jobs.batch=1, used: count/jobs.batch=1, limited: count/jobs.batch=1',
    );
    expect(isNamespaceTerminating(new ApiException(403, 'Forbidden', quota, {}))).toBe(false);
    expect(
      isNamespaceTerminating(
        new ApiException(
          403,
          'Forbidden',
          status(403, 'Forbidden', 'jobs.batch is forbidden: User "op" cannot create resource "jobs"'),
          {},
        ),
      ),
    ).toBe(false);
    expect(isNamespaceTerminating(new ApiException(422, 'Invalid', { ...terminating, code: 422 }, {}))).toBe(false);
    expect(
      isNamespaceTerminating(new Error('unable to create new content in namespace x because it is being terminated')),
    ).toBe(false);
  });
});

describe('isRefusal', () => {
  it('is a 400, 403 or 422: the API server answered no, not "could not answer"', () => {
    for (const code of [400, 403, 422]) expect(isRefusal(new ApiException(code, 'x', '', {}))).toBe(true);
    for (const code of [404, 409, 429, 500, 503, 504])
      expect(isRefusal(new ApiException(code, 'x', '', {}))).toBe(false);
    expect(isRefusal(new TypeError('fetch failed'))).toBe(false);
  });
});
