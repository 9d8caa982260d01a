// A TLS-terminating HTTP proxy between one replica and the API server, for
// faults only an HTTP-aware hop can inject: 429 with Retry-After and 5xx.
// It serves a certificate signed by the test CA (so the replica's kubeconfig
// needs no change beyond the address) and talks to the API server with that
// replica's own client certificate, so the audit log still names the replica.
//
// Modes, with probability `rate` per request while active:
// - `throttle`: 429 Too Many Requests with Retry-After, never forwarded.
// - `unavailable`: 503/500 before forwarding — the request never happened.
// - `lost-response`: forwarded and executed, then answered with 504/500 — the
//   client believes a write failed although it was applied (idempotence test).
import https from 'node:https';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type net from 'node:net';
import type { Pki } from '../controlplane/pki.ts';
import type { Rng } from './rng.ts';

export type HttpFaultMode = 'throttle' | 'unavailable' | 'lost-response';

export interface UpstreamCredentials {
  url: string;
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** A loopback serving certificate signed by the test CA. */
export function issueServingCert(pki: Pki, name: string): { cert: Buffer; key: Buffer } {
  const base = path.join(pki.dir, `chaos-${name.replace(/[^a-z0-9-]/gi, '_')}`);
  const ext = `${base}.ext`;
  writeFileSync(
    ext,
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1,DNS:localhost\n',
  );
  const run = (args: string[]) => execFileSync('openssl', args, { cwd: pki.dir, stdio: ['ignore', 'ignore', 'pipe'] });
  run(['genrsa', '-out', `${base}.key`, '2048']);
  run(['req', '-new', '-key', `${base}.key`, '-subj', `/CN=${name}`, '-out', `${base}.csr`]);
  run([
    'x509',
    '-req',
    '-in',
    `${base}.csr`,
    '-CA',
    pki.caCert,
    '-CAkey',
    pki.caKey,
    '-CAcreateserial',
    '-days',
    '30',
    '-extfile',
    ext,
    '-out',
    `${base}.crt`,
  ]);
  return { cert: readFileSync(`${base}.crt`), key: readFileSync(`${base}.key`) };
}

function status(code: number, reason: string, message: string): string {
  return JSON.stringify({ kind: 'Status', apiVersion: 'v1', metadata: {}, status: 'Failure', message, reason, code });
}

export class HttpFaultProxy {
  mode: HttpFaultMode | undefined;
  rate = 0;
  /** Requests answered with an injected error, per mode. */
  injected: Record<HttpFaultMode, number> = { throttle: 0, unavailable: 0, 'lost-response': 0 };
  port = 0;
  private server: https.Server;
  private agent: https.Agent;
  private readonly upstream: URL;
  private readonly rng: Rng;
  private sockets = new Set<net.Socket>();

  private constructor(serving: { cert: Buffer; key: Buffer }, upstream: UpstreamCredentials, rng: Rng) {
    this.upstream = new URL(upstream.url);
    this.rng = rng;
    this.agent = new https.Agent({
      keepAlive: true,
      ca: upstream.ca,
      cert: upstream.cert,
      key: upstream.key,
      maxSockets: 64,
    });
    this.server = https.createServer({ cert: serving.cert, key: serving.key }, (req, res) => this.handle(req, res));
    this.server.on('connection', (s: net.Socket) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
  }

  static async start(
    serving: { cert: Buffer; key: Buffer },
    upstream: UpstreamCredentials,
    rng: Rng,
  ): Promise<HttpFaultProxy> {
    const proxy = new HttpFaultProxy(serving, upstream, rng);
    await new Promise<void>((resolve, reject) => {
      proxy.server.once('error', reject);
      proxy.server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy.port = (proxy.server.address() as net.AddressInfo).port;
    return proxy;
  }

  activate(mode: HttpFaultMode, rate: number): void {
    this.mode = mode;
    this.rate = rate;
  }

  heal(): void {
    this.mode = undefined;
    this.rate = 0;
  }

  private handle(req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): void {
    const mode = this.mode !== undefined && this.rng.next() < this.rate ? this.mode : undefined;
    if (mode === 'throttle') {
      this.injected.throttle++;
      req.resume();
      res.writeHead(429, { 'Content-Type': 'application/json', 'Retry-After': '1' });
      res.end(status(429, 'TooManyRequests', 'chaos: injected throttling, retry after 1 s'));
      return;
    }
    if (mode === 'unavailable') {
      this.injected.unavailable++;
      req.resume();
      const code = this.rng.next() < 0.5 ? 503 : 500;
      res.writeHead(code, { 'Content-Type': 'application/json' });
      res.end(
        status(
          code,
          code === 503 ? 'ServiceUnavailable' : 'InternalError',
          'chaos: injected server error before the request was applied',
        ),
      );
      return;
    }
    const isWatch = /[?&]watch=(true|1)/.test(req.url ?? '');
    const headers = { ...req.headers, host: this.upstream.host };
    const upstreamReq = https.request(
      {
        host: this.upstream.hostname,
        port: this.upstream.port,
        method: req.method,
        path: req.url,
        headers,
        agent: this.agent,
      },
      (upstreamRes) => {
        if (mode === 'lost-response' && !isWatch) {
          this.injected['lost-response']++;
          upstreamRes.resume();
          upstreamRes.on('end', () => {
            const code = this.rng.next() < 0.5 ? 504 : 500;
            res.writeHead(code, { 'Content-Type': 'application/json' });
            res.end(status(code, 'Timeout', 'chaos: the request was applied but its response was lost'));
          });
          return;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        // A response cut off upstream (the API server was killed mid-watch)
        // must cut the client's response too, as the real connection would
        // have: pipe() alone leaves the client's watch open and silent forever.
        upstreamRes.on('error', () => res.destroy());
        upstreamRes.on('close', () => {
          if (!upstreamRes.complete) res.destroy();
        });
        upstreamRes.pipe(res);
      },
    );
    upstreamReq.on('error', (err) => {
      if (!res.headersSent) {
        res.writeHead(502, { 'Content-Type': 'application/json' });
        res.end(status(502, 'BadGateway', `chaos proxy: upstream error ${err.message}`));
      } else res.destroy();
    });
    res.on('close', () => upstreamReq.destroy());
    req.pipe(upstreamReq);
  }

  async close(): Promise<void> {
    for (const s of this.sockets) s.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
