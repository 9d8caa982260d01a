// API clients with what client-node lacks by default: a timeout on every
// request (one hung request must not cost the leadership or stall a
// reconcile), an optional synchronous guard evaluated immediately before
// every mutating request is sent (the leader's self-fencing check), and
// connection reuse.
//
// Connection reuse: client-node 2.0's kubeconfig authentication builds a new
// undici Agent for every request, so every request opened a new TLS
// connection (handshake and client-certificate verification on both sides),
// which was most of the cost of a status write on both ends (figures:
// bench/results/probes.md). Here the headers still come from the kubeconfig on every
// request (tokens rotate), but the TLS connection comes from one keep-alive
// pool per kubeconfig and TLS identity, replaced when the identity changes.
import type * as https from 'node:https';
import * as k8s from '@kubernetes/client-node';
import { Agent } from 'undici';
import type { RequestMetrics } from './client-metrics.ts';

export interface ClientOptions {
  /** Per-request timeout in milliseconds. */
  timeoutMs: number;
  /**
   * Called synchronously right before a mutating request (anything but GET)
   * leaves this process; throwing refuses the request. Used for fencing.
   */
  beforeWrite?: (method: string, url: string) => void;
  userAgent?: string;
  /** Called with the headers of every response (e.g. to follow the server's clock from `Date`). */
  onResponse?: (headers: Record<string, string>) => void;
  /** Counts every request and its latency (rest_client_* metrics, client-metrics.ts). */
  metrics?: RequestMetrics;
}

type ApiConstructor<T> = new (config: k8s.Configuration) => T;

interface Pool {
  /** The TLS settings the pool's connections were made with. */
  tls: unknown[];
  agent: Agent;
}
const pools = new WeakMap<k8s.KubeConfig, Pool>();

const sameSetting = (a: unknown, b: unknown) => (Buffer.isBuffer(a) && Buffer.isBuffer(b) ? a.equals(b) : a === b);

/**
 * The shared keep-alive pool for this kubeconfig's current TLS identity, or
 * undefined where client-node's own dispatcher must stay (proxies, plain HTTP).
 */
async function pooledDispatcher(kc: k8s.KubeConfig): Promise<Agent | undefined> {
  const options: https.RequestOptions = {};
  await kc.applyToHTTPSOptions(options); // re-read: an exec plugin or a rotated file may change the certificate
  const dispatcher = kc.createDispatcherOptions(kc.getCurrentCluster(), options as https.AgentOptions);
  if (dispatcher.type !== 'agent') return undefined;
  const c = dispatcher.connect as Record<string, unknown>;
  const tls = [c.ca, c.cert, c.key, c.pfx, c.passphrase, c.rejectUnauthorized, c.servername];
  const current = pools.get(kc);
  if (current && tls.every((v, i) => sameSetting(v, current.tls[i]))) return current.agent;
  const agent = new Agent({ connect: dispatcher.connect as Agent.Options['connect'] });
  pools.set(kc, { tls, agent });
  // Requests already on the old pool finish; its idle sockets close.
  if (current) void current.agent.close().catch(() => undefined);
  return agent;
}

export function makeClient<T>(kc: k8s.KubeConfig, api: ApiConstructor<T>, options: ClientOptions): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
  const auth: k8s.SecurityAuthentication = {
    getName: () => 'kubeconfig with pooled connections',
    applySecurityAuthentication: async (ctx) => {
      await kc.applySecurityAuthentication(ctx);
      const pooled = await pooledDispatcher(kc);
      if (pooled) ctx.setDispatcher(pooled as unknown as Parameters<typeof ctx.setDispatcher>[0]);
    },
  };
  const guard: k8s.Middleware = {
    pre: async (ctx) => {
      ctx.setSignal(AbortSignal.timeout(options.timeoutMs));
      if (options.userAgent) ctx.setHeaderParam('User-Agent', options.userAgent);
      const method = String(ctx.getHttpMethod());
      if (options.beforeWrite && method !== 'GET') options.beforeWrite(method, ctx.getUrl());
      return ctx;
    },
    post: async (ctx) => {
      options.onResponse?.(ctx.headers);
      return ctx;
    },
  };
  const config = k8s.createConfiguration({
    baseServer: new k8s.ServerConfiguration(cluster.server, {}),
    authMethods: { default: auth },
    promiseMiddleware: [guard],
    ...(options.metrics ? { httpApi: measured(options.metrics) } : {}),
  });
  return new api(config);
}

/**
 * The HTTP exchange itself, timed and counted: the one place that sees both a
 * request and its response (middlewares see them apart). After the
 * middlewares, so a request refused by beforeWrite is never counted.
 */
function measured(metrics: RequestMetrics): k8s.HttpLibrary {
  const http = new k8s.IsomorphicFetchHttpLibrary();
  return k8s.wrapHttpLibrary({
    async send(request) {
      const started = performance.now();
      const method = String(request.getHttpMethod());
      let code: number | undefined;
      try {
        const response = await http.send(request).toPromise();
        code = response.httpStatusCode;
        return response;
      } finally {
        metrics.observe(method, request.getUrl(), code, (performance.now() - started) / 1000);
      }
    },
  });
}
