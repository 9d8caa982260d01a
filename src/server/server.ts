// The health and metrics endpoint every replica serves (leader or standby):
//   /livez (alias /healthz)  the process works; a leader that can no longer
//                            renew its Lease is reported, as client-go's adaptor does
//   /readyz                  caches are synced, the replica is not shutting down,
//                            and no other replica uses its identity; standbys are
//                            ready too (readiness is not leadership)
//   /metrics                 Prometheus text format from the shared registry
// Check output follows the API server's own /livez and /readyz: "ok", or a
// list of [+]/[-] lines with ?verbose or on failure.
import type { AddressInfo } from 'node:net';
import type { Server } from 'node:http';
import express, { type Request, type Response } from 'express';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface CheckResult {
  ok: boolean;
  reason?: string;
}

export interface HealthCheck {
  name: string;
  check: () => CheckResult;
}

export interface ServerOptions {
  host: string;
  port: number;
  registry: Registry;
  liveness: HealthCheck[];
  readiness: HealthCheck[];
  logger: Logger;
}

export interface HealthServer {
  /** The port actually bound (useful with port 0). */
  port: number;
  close(): Promise<void>;
}

function runChecks(checks: HealthCheck[]): Array<{ name: string } & CheckResult> {
  return checks.map(({ name, check }) => {
    try {
      return { name, ...check() };
    } catch (err) {
      return { name, ok: false, reason: `check threw: ${(err as Error).message}` };
    }
  });
}

function healthHandler(kind: 'livez' | 'readyz', checks: HealthCheck[]) {
  return (req: Request, res: Response) => {
    const results = runChecks(checks);
    const ok = results.every((r) => r.ok);
    res.status(ok ? 200 : 503).type('text/plain');
    if (ok && req.query.verbose === undefined) {
      res.send('ok');
      return;
    }
    const lines = results.map((r) => (r.ok ? `[+]${r.name} ok` : `[-]${r.name} failed: ${r.reason ?? 'not ok'}`));
    lines.push(ok ? `${kind} check passed` : `${kind} check failed`);
    res.send(`${lines.join('\n')}\n`);
  };
}

export async function startServer(options: ServerOptions): Promise<HealthServer> {
  const app = express();
  app.disable('x-powered-by');
  const live = healthHandler('livez', options.liveness);
  app.get('/livez', live);
  app.get('/healthz', live);
  app.get('/readyz', healthHandler('readyz', options.readiness));
  app.get('/metrics', async (_req, res) => {
    try {
      const body = await options.registry.metrics();
      res.type(options.registry.contentType).send(body);
    } catch (err) {
      options.logger.error({ err }, 'Failed to collect metrics');
      res.status(500).type('text/plain').send('failed to collect metrics\n');
    }
  });
  app.use((_req, res) => void res.status(404).type('text/plain').send('not found: try /livez, /readyz or /metrics\n'));

  const server = await new Promise<Server>((resolve, reject) => {
    const s = app.listen(options.port, options.host, (err?: Error) => (err ? reject(err) : resolve(s)));
    s.once('error', reject);
  });
  const port = (server.address() as AddressInfo).port;
  options.logger.info({ host: options.host, port }, 'Serving /livez, /readyz and /metrics');
  return {
    port,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        // Probes and scrapes use keep-alive; do not let them hold up the exit.
        server.closeAllConnections();
      }),
  };
}
