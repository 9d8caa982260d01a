import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import * as k8s from '@kubernetes/client-node';
import { Registry } from 'prom-client';
import type { SingletonJob } from '../api/v1alpha1/singletonjob.ts';
import { makeClient } from '../kube/client.ts';
import { restClientMetrics } from '../kube/client-metrics.ts';
import { controllerMetrics } from './metrics.ts';
import { objectMetrics } from './object-metrics.ts';
import { WorkQueue } from '../kube/workqueue.ts';

/** The value of one series in the exposition text, or undefined. */
function value(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

describe('controller metrics', () => {
  it('use controller-runtime names and labels for reconciles and the work queue', async () => {
    const registry = new Registry();
    const metrics = controllerMetrics(registry);
    let now = 0;
    const queue = new WorkQueue({ now: () => now, metrics: metrics.queue });
    queue.add('ns/a');
    queue.add('ns/a');
    queue.add('ns/b');
    let text = await registry.metrics();
    expect(value(text, 'workqueue_adds_total{name="singletonjob"}')).toBe(2);
    expect(value(text, 'workqueue_depth{name="singletonjob"}')).toBe(2);
    now = 500;
    await queue.get();
    now = 2000;
    text = await registry.metrics();
    expect(value(text, 'workqueue_depth{name="singletonjob"}')).toBe(1);
    expect(value(text, 'workqueue_queue_duration_seconds_sum{name="singletonjob"}')).toBe(0.5);
    expect(value(text, 'workqueue_longest_running_processor_seconds{name="singletonjob"}')).toBe(1.5);
    expect(value(text, 'workqueue_unfinished_work_seconds{name="singletonjob"}')).toBe(1.5);
    queue.addRateLimited('ns/a');
    queue.done('ns/a');
    text = await registry.metrics();
    expect(value(text, 'workqueue_retries_total{name="singletonjob"}')).toBe(1);
    expect(value(text, 'workqueue_work_duration_seconds_count{name="singletonjob"}')).toBe(1);
    expect(value(text, 'workqueue_longest_running_processor_seconds{name="singletonjob"}')).toBe(0);
    queue.shutDown();
    expect(value(text, 'controller_runtime_reconcile_total{controller="singletonjob",result="success"}')).toBe(0);
    expect(value(text, 'controller_runtime_reconcile_errors_total{controller="singletonjob"}')).toBe(0);
    expect(text).toContain('# TYPE controller_runtime_reconcile_time_seconds histogram');
    // Everything that is ours alone has one prefix.
    const names = [...text.matchAll(/^# TYPE (\S+)/gm)].map((m) => m[1]!);
    expect(
      names
        .filter((n) => !/^(controller_runtime_|workqueue_|rest_client_|leader_election_)/.test(n))
        .every((n) => n.startsWith('singleton_operator_')),
    ).toBe(true);
  });

  it("export each SingletonJob's status from the cache, only while leading", async () => {
    const registry = new Registry();
    let leading = false;
    const sj = {
      apiVersion: 'singleton.dev/v1alpha1',
      kind: 'SingletonJob',
      metadata: { namespace: 'team', name: 'nightly' },
      spec: {},
      status: {
        currentToken: 42,
        lastSuccessfulTime: '2026-01-01T00:00:10Z',
        nextScheduleTime: '2026-01-02T00:00:00Z',
        consecutiveFailures: 2,
        skippedSlots: 3,
        activeRun: { name: 'nightly-1', token: 42, term: 7, kind: 'Scheduled', reservedTime: '2026-01-01T00:00:00Z' },
        conditions: [
          {
            type: 'Stalled',
            status: 'True',
            reason: 'PodNeverRan',
            message: '',
            lastTransitionTime: '2026-01-01T00:00:00Z',
          },
        ],
        recentRuns: [
          {
            outcome: 'Failed',
            name: 'x',
            token: 41,
            term: 7,
            kind: 'Scheduled',
            reservedTime: '2026-01-01T00:00:00Z',
            finishedTime: '2026-01-01T00:00:00Z',
          },
          {
            outcome: 'Failed',
            name: 'y',
            token: 40,
            term: 7,
            kind: 'Scheduled',
            reservedTime: '2026-01-01T00:00:00Z',
            finishedTime: '2026-01-01T00:00:00Z',
          },
          {
            outcome: 'Succeeded',
            name: 'z',
            token: 39,
            term: 7,
            kind: 'Scheduled',
            reservedTime: '2026-01-01T00:00:00Z',
            finishedTime: '2026-01-01T00:00:00Z',
          },
        ],
      },
    } as unknown as SingletonJob;
    let now = 0;
    objectMetrics(registry, { list: () => [sj], exporting: () => leading, now: () => now });
    expect(await registry.metrics()).not.toContain('namespace="team"');
    leading = true;
    // Within the per-scrape snapshot (1 s) the last answer stands; past it, the leader's objects show.
    now = 900;
    expect(await registry.metrics()).not.toContain('namespace="team"');
    now = 1100;
    const text = await registry.metrics();
    const l = '{namespace="team",name="nightly"}';
    expect(value(text, `singleton_operator_singletonjob_current_token${l}`)).toBe(42);
    expect(value(text, `singleton_operator_singletonjob_last_successful_run_timestamp_seconds${l}`)).toBe(
      Date.parse('2026-01-01T00:00:10Z') / 1000,
    );
    expect(value(text, `singleton_operator_singletonjob_next_schedule_timestamp_seconds${l}`)).toBe(
      Date.parse('2026-01-02T00:00:00Z') / 1000,
    );
    expect(value(text, `singleton_operator_singletonjob_active_run${l}`)).toBe(1);
    expect(value(text, `singleton_operator_singletonjob_consecutive_failures${l}`)).toBe(2);
    expect(value(text, `singleton_operator_singletonjob_skipped_slots_total${l}`)).toBe(3);
    expect(
      value(text, 'singleton_operator_singletonjob_recent_runs{namespace="team",name="nightly",outcome="Failed"}'),
    ).toBe(2);
    expect(
      value(
        text,
        'singleton_operator_singletonjob_status_condition{namespace="team",name="nightly",type="Stalled",status="True"}',
      ),
    ).toBe(1);
    expect(text).not.toContain('singleton_operator_singletonjob_last_schedule_timestamp_seconds{');
  });

  it('count API requests by code, method and host, as client-go does (429 and 5xx included)', async () => {
    const codes = [200, 429, 503];
    const server = createServer((_req, res) => {
      const code = codes.shift() ?? 200;
      res.writeHead(code, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify(
          code === 200
            ? { kind: 'LeaseList', apiVersion: 'coordination.k8s.io/v1', metadata: {}, items: [] }
            : { kind: 'Status', code },
        ),
      );
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const port = (server.address() as AddressInfo).port;
      const kc = new k8s.KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
        users: [{ name: 'u' }],
        contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
        currentContext: 'x',
      });
      const registry = new Registry();
      const api = makeClient(kc, k8s.CoordinationV1Api, { timeoutMs: 5000, metrics: restClientMetrics(registry) });
      for (let i = 0; i < 3; i++) await api.listNamespacedLease({ namespace: 'default' }).catch(() => undefined);
      const text = await registry.metrics();
      const host = `127.0.0.1:${port}`;
      for (const code of ['200', '429', '503'])
        expect(value(text, `rest_client_requests_total{code="${code}",method="GET",host="${host}"}`)).toBe(1);
      expect(value(text, `rest_client_request_duration_seconds_count{verb="GET",host="${host}"}`)).toBe(3);
    } finally {
      server.close();
    }
  });
});
