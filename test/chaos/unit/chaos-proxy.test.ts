// The chaos proxies on loopback: the TCP proxy holds traffic while
// blackholed and delivers it on heal; the HTTP fault proxy injects 429/5xx,
// forwards with the replica's credentials, and "loses" applied responses.
import https from 'node:https';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TcpProxy, type Direction } from '../tcp-proxy.ts';
import { HttpFaultProxy, issueServingCert } from '../http-fault-proxy.ts';
import { createPki, issueClientCert } from '../../controlplane/pki.ts';
import { Rng } from '../rng.ts';

/** What one socket received, and promises resolved by its data handler. */
class Received {
  text = '';
  private waiters: { length: number; resolve: (at: number) => void }[] = [];
  constructor(socket: net.Socket) {
    socket.on('data', (d: Buffer) => {
      this.text += d.toString();
      const at = Date.now();
      this.waiters = this.waiters.filter((w) => (this.text.length >= w.length ? (w.resolve(at), false) : true));
    });
  }
  /** Resolves, with Date.now() at that data event, once `want` more characters than so far have arrived. */
  more(want: string): Promise<number> {
    const length = this.text.length + want.length;
    return new Promise((resolve) => this.waiters.push({ length, resolve }));
  }
}

/** A promise that must settle long before jest's own timeout, so a broken proxy fails quickly and says why. */
function within<T>(what: string, p: Promise<T>, ms = 5000): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    p.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms))),
  ]);
}

/**
 * Which comes first: the proxy holding `bytes` of `direction` once it has read
 * them (now, or at a `read` event — no clock), or `arrival` on the far side.
 * A proxy that passes the bytes on instead of holding them never reports them
 * held, and the arrival wins.
 */
function heldOrArrived(proxy: TcpProxy, direction: Direction, bytes: number, arrival: Promise<unknown>) {
  return within(
    `${direction} held or delivered`,
    new Promise<'held' | 'arrived'>((resolve) => {
      const check = () => {
        if (proxy.held(direction) < bytes) return;
        proxy.events.off('read', check);
        resolve('held');
      };
      proxy.events.on('read', check);
      check(); // it may have read them already
      void arrival.then(() => {
        proxy.events.off('read', check);
        resolve('arrived');
      });
    }),
  );
}

/** Sockets, servers and proxies a test opened, closed after it even when it fails. */
const opened: { close(): unknown }[] = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});
const closeSocket = (s: net.Socket) => ({ close: () => s.destroy() });

test('the seeded PRNG replays the same sequence', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  expect(Array.from({ length: 5 }, () => a.int(0, 1000))).toEqual(Array.from({ length: 5 }, () => b.int(0, 1000)));
  expect(new Rng(7).shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
});

test('the TCP proxy holds bytes while blackholed and delivers them when healed; a slow link delays them', async () => {
  let echoed = '';
  const echo = net.createServer((s) => {
    s.on('data', (d: Buffer) => (echoed += d.toString()));
    s.pipe(s);
  });
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  opened.push(echo);
  const proxy = await TcpProxy.start((echo.address() as net.AddressInfo).port);
  opened.push(proxy);
  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  opened.push(closeSocket(client));
  const received = new Received(client);

  // A clean link: there and back.
  let back = received.more('a');
  client.write('a');
  await within('echo of a', back);
  expect(received.text).toBe('a');

  // Blackholed: the proxy reads 'b' and holds it — the echo server never saw it, nothing came back…
  proxy.blackhole();
  back = received.more('b');
  client.write('b');
  expect(await heldOrArrived(proxy, 'requests', 1, back)).toBe('held');
  expect(echoed).toBe('a');
  expect(received.text).toBe('a');
  // …until healed: delivered at once, and it comes back.
  proxy.heal();
  expect(proxy.held('requests')).toBe(0);
  await within('echo of b after heal', back);
  expect(received.text).toBe('ab');
  expect(echoed).toBe('ab');

  // Slow: each way is `delay` late — held when read, and the round trip takes at least twice the delay.
  const delay = 150;
  proxy.delay(delay);
  back = received.more('c');
  const sentAt = Date.now();
  client.write('c');
  expect(await heldOrArrived(proxy, 'requests', 1, back)).toBe('held');
  const backAt = await within('echo of c on the slow link', back);
  expect(received.text).toBe('abc');
  expect(backAt - sentAt).toBeGreaterThanOrEqual(2 * delay);
});

test('the TCP proxy can hold what the client sent while responses flow, and delivers it later', async () => {
  let seen = '';
  let request!: () => void;
  const requestSeen = new Promise<void>((r) => (request = r));
  const server = net.createServer((s) => {
    s.on('data', (d: Buffer) => {
      seen += d.toString();
      if (seen.length >= 'request'.length) request();
    });
    s.write('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  opened.push(server);
  const proxy = await TcpProxy.start((server.address() as net.AddressInfo).port);
  opened.push(proxy);
  proxy.holdRequests();
  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  opened.push(closeSocket(client));
  const received = new Received(client);
  const hello = received.more('hello');
  client.write('request');
  // The response flows; the request is read and held, the server never saw it…
  await within('the response while requests are held', hello);
  expect(received.text).toBe('hello');
  expect(await heldOrArrived(proxy, 'requests', 'request'.length, requestSeen)).toBe('held');
  expect(seen).toBe('');
  // …until healed.
  proxy.heal();
  expect(proxy.held('requests')).toBe(0);
  await within('the request after heal', requestSeen);
  expect(seen).toBe('request');
});

describe('the HTTP fault proxy', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'chaos-proxy-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  test('injects 429 with Retry-After, 5xx, and lost responses; forwards with the upstream client certificate', async () => {
    const pki = createPki(dir);
    const serving = issueServingCert(pki, 'upstream');
    const clientCert = issueClientCert(pki, 'replica-a');
    let applied = 0;
    const seen: string[] = [];
    const upstream = https.createServer(
      { ...serving, ca: readFileSync(pki.caCert), requestCert: true, rejectUnauthorized: true },
      (req, res) => {
        applied++;
        const cert = (req.socket as import('node:tls').TLSSocket).getPeerCertificate();
        seen.push(String(cert.subject.CN ?? ''));
        res.writeHead(201, { 'Content-Type': 'application/json' });
        res.end('{"ok":true}');
      },
    );
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', () => r()));
    const proxy = await HttpFaultProxy.start(
      issueServingCert(pki, 'proxy'),
      {
        url: `https://127.0.0.1:${(upstream.address() as net.AddressInfo).port}`,
        ca: readFileSync(pki.caCert),
        cert: readFileSync(clientCert.cert),
        key: readFileSync(clientCert.key),
      },
      new Rng(1),
    );
    const agent = new https.Agent({ ca: readFileSync(pki.caCert) });
    const call = () =>
      new Promise<{ code: number; retryAfter?: string; body: string }>((resolve, reject) => {
        const req = https.request(
          { host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/api/v1/x', agent },
          (res) => {
            let body = '';
            res.on('data', (d) => (body += d));
            res.on('end', () =>
              resolve({
                code: res.statusCode ?? 0,
                retryAfter: res.headers['retry-after'] as string | undefined,
                body,
              }),
            );
          },
        );
        req.on('error', reject);
        req.end('{}');
      });
    expect((await call()).code).toBe(201);
    expect(seen).toEqual(['replica-a']);
    proxy.activate('throttle', 1);
    const throttled = await call();
    expect(throttled).toMatchObject({ code: 429, retryAfter: '1' });
    expect(JSON.parse(throttled.body)).toMatchObject({ kind: 'Status', reason: 'TooManyRequests', code: 429 });
    proxy.activate('unavailable', 1);
    expect([500, 503]).toContain((await call()).code);
    expect(applied).toBe(1);
    proxy.activate('lost-response', 1);
    expect([500, 504]).toContain((await call()).code);
    expect(applied).toBe(2);
    proxy.heal();
    expect((await call()).code).toBe(201);
    expect(proxy.injected).toEqual({ throttle: 1, unavailable: 1, 'lost-response': 1 });
    agent.destroy();
    await proxy.close();
    upstream.close();
  });
});
