import { Writable } from 'node:stream';
import pino from 'pino';
import { Counter, Registry } from 'prom-client';
import { startServer, type HealthServer } from './server.ts';

const silent = pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() }));

describe('health and metrics server', () => {
  let server: HealthServer;
  let synced = false;
  let renewing = true;
  const registry = new Registry();
  new Counter({ name: 'singletonjob_test_total', help: 'a test counter', registers: [registry] }).inc(3);
  const url = (p: string) => `http://127.0.0.1:${server.port}${p}`;

  beforeAll(async () => {
    server = await startServer({
      host: '127.0.0.1',
      port: 0,
      registry,
      logger: silent,
      liveness: [
        {
          name: 'leader-election',
          check: () => (renewing ? { ok: true } : { ok: false, reason: 'lease not renewed for 20s' }),
        },
      ],
      readiness: [
        {
          name: 'informer-sync',
          check: () => (synced ? { ok: true } : { ok: false, reason: 'caches not synced yet' }),
        },
        { name: 'shutdown', check: () => ({ ok: true }) },
      ],
    });
  });
  afterAll(() => server.close());

  it('is not ready until the caches synced, then answers ok', async () => {
    let res = await fetch(url('/readyz'));
    expect(res.status).toBe(503);
    expect(await res.text()).toBe(
      '[-]informer-sync failed: caches not synced yet\n[+]shutdown ok\nreadyz check failed\n',
    );
    synced = true;
    res = await fetch(url('/readyz'));
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
    res = await fetch(url('/readyz?verbose'));
    expect(await res.text()).toBe('[+]informer-sync ok\n[+]shutdown ok\nreadyz check passed\n');
  });

  it('serves liveness on /livez and /healthz, failing when the leader cannot renew', async () => {
    expect((await fetch(url('/livez'))).status).toBe(200);
    expect(await (await fetch(url('/healthz'))).text()).toBe('ok');
    renewing = false;
    const res = await fetch(url('/healthz'));
    expect(res.status).toBe(503);
    expect(await res.text()).toContain('[-]leader-election failed: lease not renewed for 20s');
    renewing = true;
  });

  it('serves the registry in Prometheus text format', async () => {
    const res = await fetch(url('/metrics'));
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    expect(await res.text()).toContain('singletonjob_test_total 3');
  });

  it('answers unknown paths with 404', async () => {
    expect((await fetch(url('/'))).status).toBe(404);
  });
});
