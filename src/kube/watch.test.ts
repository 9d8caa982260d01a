import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { statusCode } from './errors.ts';
import { watchOnce } from './watch.ts';
import type { WatchRequest } from './watch.ts';

/** A plain-HTTP API server stand-in: `respond` writes the watch response; requests are recorded. */
async function fakeServer(respond: (res: http.ServerResponse) => void) {
  const urls: URL[] = [];
  const server = http.createServer((req, res) => {
    urls.push(new URL(req.url!, 'http://localhost'));
    respond(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromOptions({
    clusters: [
      { name: 'c', server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, skipTLSVerify: true },
    ],
    users: [{ name: 'u' }],
    contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
    currentContext: 'x',
  });
  const close = () => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return { kubeConfig, urls, close };
}

const line = (type: string, object: unknown) => `${JSON.stringify({ type, object })}\n`;
const request = (kubeConfig: KubeConfig, extra: Partial<WatchRequest> = {}): WatchRequest => ({
  kubeConfig,
  path: '/apis/coordination.k8s.io/v1/namespaces/ns/leases',
  resourceVersion: '41',
  timeoutSeconds: 60,
  inactivityTimeoutMs: 5_000,
  ...extra,
});

/** Runs one watch to its end: the events delivered and the error onClose got. */
function run(req: WatchRequest, stopAfterEvents?: number) {
  return new Promise<{ events: [string, unknown][]; err: unknown; closes: number }>((resolve) => {
    const events: [string, unknown][] = [];
    let closes = 0;
    const handle = watchOnce(
      req,
      (type, object) => {
        events.push([type, object]);
        if (events.length === stopAfterEvents) handle.stop();
      },
      (err) => {
        closes++;
        // A second onClose would show up in `closes` before this settles.
        setTimeout(() => resolve({ events, err, closes }), 50);
      },
    );
  });
}

describe('watchOnce', () => {
  it('sends the resourceVersion, bookmarks, the server timeout and the selectors; a normal end closes without an error', async () => {
    const server = await fakeServer((res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        line('ADDED', { metadata: { name: 'a', resourceVersion: '42' } }) +
          line('BOOKMARK', { metadata: { resourceVersion: '43' } }),
      );
    });
    try {
      const { events, err, closes } = await run(
        request(server.kubeConfig, { fieldSelector: 'metadata.name=a', labelSelector: 'x=y' }),
      );
      expect(events.map(([type]) => type)).toEqual(['ADDED', 'BOOKMARK']);
      expect(err).toBeUndefined();
      expect(closes).toBe(1);
      const query = Object.fromEntries(server.urls[0]!.searchParams);
      expect(query).toEqual({
        watch: 'true',
        resourceVersion: '41',
        allowWatchBookmarks: 'true',
        timeoutSeconds: '60',
        fieldSelector: 'metadata.name=a',
        labelSelector: 'x=y',
      });
    } finally {
      await server.close();
    }
  });

  it('ends on an ERROR event with its code (410: list again), delivering nothing after it', async () => {
    const server = await fakeServer((res) => {
      res.writeHead(200);
      res.end(
        line('ERROR', { kind: 'Status', code: 410, message: 'too old resource version' }) +
          line('ADDED', { metadata: { name: 'late' } }),
      );
    });
    try {
      const { events, err, closes } = await run(request(server.kubeConfig));
      expect(events).toEqual([]);
      expect(statusCode(err)).toBe(410);
      expect(String(err)).toContain('too old resource version');
      expect(closes).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('reports a failed request with its HTTP status as code', async () => {
    const server = await fakeServer((res) => {
      res.writeHead(403);
      res.end('{}');
    });
    try {
      const { err, closes } = await run(request(server.kubeConfig));
      expect(statusCode(err)).toBe(403);
      expect(closes).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('stop() closes at once without an error and delivers nothing more', async () => {
    const server = await fakeServer((res) => {
      res.writeHead(200);
      res.write(line('ADDED', { metadata: { name: 'a' } }));
      res.write(line('MODIFIED', { metadata: { name: 'a' } }));
      // the connection stays open
    });
    try {
      const { events, err, closes } = await run(request(server.kubeConfig), 1);
      expect(events.map(([type]) => type)).toEqual(['ADDED']);
      expect(err).toBeUndefined();
      expect(closes).toBe(1);
    } finally {
      await server.close();
    }
  });

  it('abandons a silent connection after the inactivity timeout (not client-node’s 30 s default)', async () => {
    const server = await fakeServer((res) => {
      res.writeHead(200);
      res.flushHeaders();
    });
    try {
      const started = performance.now();
      const { err, closes } = await run(request(server.kubeConfig, { inactivityTimeoutMs: 300 }));
      expect((err as Error).name).toBe('TimeoutError');
      expect(performance.now() - started).toBeLessThan(5_000);
      expect(closes).toBe(1);
    } finally {
      await server.close();
    }
  });
});
