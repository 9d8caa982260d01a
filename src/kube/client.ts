// API clients with the two things client-node lacks by default: a timeout on
// every request (one hung request must not cost the leadership or stall a
// reconcile), and an optional synchronous guard evaluated immediately before
// every mutating request is sent (the leader's self-fencing check).
import * as k8s from '@kubernetes/client-node';

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
}

type ApiConstructor<T> = new (config: k8s.Configuration) => T;

export function makeClient<T>(kc: k8s.KubeConfig, api: ApiConstructor<T>, options: ClientOptions): T {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('the kubeconfig has no current cluster');
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
    authMethods: { default: kc },
    promiseMiddleware: [guard],
  });
  return new api(config);
}
