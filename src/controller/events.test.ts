// The Event queue: written while no reconcile work waits, at most maxDelayMs
// late, repeated Events aggregated, the queue bounded. The API server side is
// a recording stand-in for CoreV1Api.createNamespacedEvent (the Events the real
// API server receives are covered by the integration tests).
import type { CoreV1Api, CoreV1Event } from '@kubernetes/client-node';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { SingletonJob } from '../api/v1alpha1/singletonjob.ts';
import { EventRecorder, eventMetrics } from './events.ts';

function sj(name: string): SingletonJob {
  return {
    apiVersion: 'singleton.dev/v1alpha1',
    kind: 'SingletonJob',
    metadata: { name, namespace: 'ns', uid: `uid-${name}`, resourceVersion: '1' },
    spec: { jobTemplate: {} },
  } as unknown as SingletonJob;
}

function sink() {
  const written: CoreV1Event[] = [];
  const core = { createNamespacedEvent: async ({ body }: { body: CoreV1Event }) => void written.push(body) } as unknown as CoreV1Api;
  return { core, written };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const silent = pino({ level: 'silent' });

describe('EventRecorder', () => {
  it('writes at once when no reconcile work waits', async () => {
    const { core, written } = sink();
    const rec = new EventRecorder(core, silent, 'me');
    await rec.emit(sj('a'), 'Normal', 'RunStarted', 'started');
    await rec.flush();
    expect(written.map((e) => [e.involvedObject.name, e.reason, e.count])).toEqual([['a', 'RunStarted', 1]]);
  });

  it('holds Events while reconcile work waits, then writes them in order', async () => {
    const { core, written } = sink();
    let busy = true;
    const rec = new EventRecorder(core, silent, 'me', { busy: () => busy });
    await rec.emit(sj('a'), 'Normal', 'RunStarted', 'a');
    await rec.emit(sj('b'), 'Normal', 'RunStarted', 'b');
    await sleep(300);
    expect(written).toHaveLength(0);
    busy = false;
    await sleep(300);
    expect(written.map((e) => e.involvedObject.name)).toEqual(['a', 'b']);
  });

  it('writes an Event that waited maxDelayMs even while busy', async () => {
    const { core, written } = sink();
    const rec = new EventRecorder(core, silent, 'me', { busy: () => true, maxDelayMs: 200 });
    await rec.emit(sj('a'), 'Warning', 'RunStalled', 'stalled');
    await sleep(50);
    expect(written).toHaveLength(0);
    await sleep(400);
    expect(written.map((e) => e.reason)).toEqual(['RunStalled']);
    rec.stop();
  });

  it('aggregates the same Event for an object while it waits (count, first and last timestamps)', async () => {
    const { core, written } = sink();
    let busy = true;
    const rec = new EventRecorder(core, silent, 'me', { busy: () => busy });
    await rec.emit(sj('a'), 'Normal', 'RunHeld', 'held');
    await sleep(20);
    await rec.emit(sj('a'), 'Normal', 'RunHeld', 'held');
    await rec.emit(sj('b'), 'Normal', 'RunHeld', 'held');
    busy = false;
    await rec.flush();
    expect(written.map((e) => [e.involvedObject.name, e.count])).toEqual([
      ['a', 2],
      ['b', 1],
    ]);
    const a = written[0]!;
    expect(new Date(a.lastTimestamp!).getTime()).toBeGreaterThan(new Date(a.firstTimestamp!).getTime());
  });

  it('keeps at most maxPending Events: the oldest is dropped and counted', async () => {
    const { core, written } = sink();
    const registry = new Registry();
    const metrics = eventMetrics(registry);
    let busy = true;
    const rec = new EventRecorder(core, silent, 'me', { busy: () => busy, maxPending: 2, metrics });
    for (const name of ['a', 'b', 'c']) await rec.emit(sj(name), 'Normal', 'RunStarted', name);
    busy = false;
    await rec.flush();
    expect(written.map((e) => e.involvedObject.name)).toEqual(['b', 'c']);
    expect((await metrics.dropped.get()).values[0]?.value).toBe(1);
  });

  it('drops pending Events once stopped (leadership lost) and writes nothing after', async () => {
    const { core, written } = sink();
    const rec = new EventRecorder(core, silent, 'me', { busy: () => true });
    await rec.emit(sj('a'), 'Normal', 'RunStarted', 'a');
    rec.stop();
    await rec.emit(sj('b'), 'Normal', 'RunStarted', 'b');
    await sleep(200);
    expect(written).toHaveLength(0);
  });
});
