// The chaos proxies on loopback: the TCP proxy holds traffic while
// blackholed and delivers it on heal; the HTTP fault proxy injects 429/5xx,
// forwards with the replica's credentials, and "loses" applied responses.
import https from 'node:https';
import net from 'node:net';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TcpProxy } from '../tcp-proxy.ts';
import { HttpFaultProxy, issueServingCert } from '../http-fault-proxy.ts';
import { createPki, issueClientCert } from '../../controlplane/pki.ts';
import { Rng } from '../rng.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('the seeded PRNG replays the same sequence', () => {
  const a = new Rng(7);
  const b = new Rng(7);
  expect(Array.from({ length: 5 }, () => a.int(0, 1000))).toEqual(Array.from({ length: 5 }, () => b.int(0, 1000)));
  expect(new Rng(7).shuffle([1, 2, 3, 4, 5]).sort()).toEqual([1, 2, 3, 4, 5]);
});

test('the TCP proxy holds bytes while blackholed and delivers them when healed', async () => {
  const echo = net.createServer((s) => s.pipe(s));
  await new Promise<void>((r) => echo.listen(0, '127.0.0.1', () => r()));
  const proxy = await TcpProxy.start((echo.address() as net.AddressInfo).port);
  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  let received = '';
  client.on('data', (d) => (received += d.toString()));
  client.write('a');
  await sleep(100);
  expect(received).toBe('a');
  proxy.blackhole();
  client.write('b');
  await sleep(200);
  expect(received).toBe('a');
  proxy.heal();
  await sleep(100);
  expect(received).toBe('ab');
  proxy.delay(300);
  client.write('c');
  await sleep(150);
  expect(received).toBe('ab');
  await sleep(600); // there and back: twice the delay
  expect(received).toBe('abc');
  client.destroy();
  await proxy.close();
  echo.close();
});

test('the TCP proxy can hold what the client sent while responses flow, and delivers it later', async () => {
  const seen: string[] = [];
  const server = net.createServer((s) => {
    s.on('data', (d) => seen.push(d.toString()));
    s.write('hello');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const proxy = await TcpProxy.start((server.address() as net.AddressInfo).port);
  proxy.holdRequests();
  const client = net.connect({ host: '127.0.0.1', port: proxy.port });
  let received = '';
  client.on('data', (d) => (received += d.toString()));
  client.write('request');
  await sleep(200);
  expect(received).toBe('hello');
  expect(seen).toEqual([]);
  proxy.heal();
  await sleep(100);
  expect(seen.join('')).toBe('request');
  client.destroy();
  await proxy.close();
  server.close();
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
