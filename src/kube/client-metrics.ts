// client-go's REST client metrics, under client-go's names and labels, so the
// dashboards and alerts platform teams run for every controller apply here:
//   rest_client_requests_total{code,method,host}          one per response (code "<error>": none arrived)
//   rest_client_request_duration_seconds{verb,host}       time until the response headers
// One set per registry: the controller's and the elector's clients share it.
import { Counter, Histogram, type Registry } from 'prom-client';

export interface RequestMetrics {
  /** A request ended: `code` is the HTTP status, or undefined when no response arrived (timeout, refused, reset). */
  observe(method: string, url: string, code: number | undefined, seconds: number): void;
}

const byRegistry = new WeakMap<Registry, RequestMetrics>();

export function restClientMetrics(registry: Registry): RequestMetrics {
  const existing = byRegistry.get(registry);
  if (existing) return existing;
  const registers = [registry];
  const requests = new Counter({
    name: 'rest_client_requests_total',
    help: 'Number of HTTP requests to the API server, partitioned by status code, method, and host.',
    labelNames: ['code', 'method', 'host'],
    registers,
  });
  const duration = new Histogram({
    name: 'rest_client_request_duration_seconds',
    help: 'Request latency in seconds. Broken down by verb, and host.',
    labelNames: ['verb', 'host'],
    // client-go's buckets.
    buckets: [0.005, 0.025, 0.1, 0.25, 0.5, 1, 2, 4, 8, 15, 30, 60],
    registers,
  });
  const metrics: RequestMetrics = {
    observe(method, url, code, seconds) {
      const host = hostOf(url);
      requests.inc({ code: code === undefined ? '<error>' : String(code), method, host });
      duration.observe({ verb: method, host }, seconds);
    },
  };
  byRegistry.set(registry, metrics);
  return metrics;
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '';
  }
}
