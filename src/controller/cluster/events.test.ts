// The Event queue: written while no reconcile work waits, at most maxDelayMs
// late, repeated Events aggregated (a series), the queue bounded. The API
// server side is a recording stand-in for EventsV1Api's create and patch (the
// Events the real API server stores are checked by
// test/integration/events.test.ts).
import type { EventsV1Api, EventsV1Event } from '@kubernetes/client-node';
import { describe, expect, it } from '@jest/globals';
import pino from 'pino';
import { Registry } from 'prom-client';
import type { SingletonJob } from '../../api/v1alpha1/singletonjob.ts';
import { ManualClock } from '../../../test/support/manual-clock.ts';
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
  const written: EventsV1Event[] = [];
  const patches: { name: string; body: { series: { count: number; lastObservedTime: string } } }[] = [];
  const core = {
    createNamespacedEvent: async ({ body }: { body: EventsV1Event }) => (written.push(body), body),
    patchNamespacedEvent: async (p: { name: string; body: { series: { count: number; lastObservedTime: string } } }) =>
      void patches.push(p),
  } as unknown as EventsV1Api;
  return { core, written, patches };
}

const silent = pino({ level: 'silent' });

describe('EventRecorder', () => {
  it('writes at once when no reconcile work waits', async () => {
    const { core, written } = sink();
    const rec = new EventRecorder(core, silent, 'me');
    await rec.emit(sj('a'), 'Normal', 'RunStarted', 'started');
    await rec.flush();
    expect(written.map((e) => [e.regarding?.name, e.reason, e.action, e.series])).toEqual([
      ['a', 'RunStarted', 'StartRun', undefined],
    ]);
    expect(written[0]).toMatchObject({
      reportingController: 'singleton.dev/singleton-operator',
      reportingInstance: 'me',
      regarding: { kind: 'SingletonJob', uid: 'uid-a' },
    });
    expect(written[0]!.related).toBeUndefined();
  });

  it('holds Events while reconcile work waits, then writes them in order', async () => {
    const { core, written } = sink();
    let busy = true;
    const clock = new ManualClock();
    const rec = new EventRecorder(core, silent, 'me', { busy: () => busy, clock });
    await rec.emit(sj('a'), 'Normal', 'RunStarted', 'a');
    await rec.emit(sj('b'), 'Normal', 'RunStarted', 'b');
    await clock.advance(300);
    expect(written).toHaveLength(0);
    busy = false;
    await clock.advance(100);
    expect(written.map((e) => e.regarding?.name)).toEqual(['a', 'b']);
  });

  it('writes an Event that waited maxDelayMs even while busy', async () => {
    const { core, written } = sink();
    const clock = new ManualClock();
    const rec = new EventRecorder(core, silent, 'me', { busy: () => true, maxDelayMs: 200, clock });
    await rec.emit(sj('a'), 'Warning', 'RunStalled', 'stalled');
    await clock.advance(199);
    expect(written).toHaveLength(0);
    await clock.advance(101);
    expect(written.map((e) => e.reason)).toEqual(['RunStalled']);
    rec.stop();
  });

  it("relates an Event to the active run's Job, or to the Job given, or to none", async () => {
    const { core, written } = sink();
    const rec = new EventRecorder(core, silent, 'me');
    const running = {
      ...sj('a'),
      status: { activeRun: { name: 'a-1', token: 7, term: 1, kind: 'Scheduled', jobUID: 'job-uid' } },
    } as unknown as SingletonJob;
    await rec.emit(running, 'Normal', 'RunFinished', 'done');
    await rec.emit(sj('a'), 'Normal', 'RunStarted', 'started', { name: 'a-2' });
    await rec.emit(running, 'Warning', 'JobRejected', 'refused', null);
    await rec.flush();
    expect(written.map((e) => [e.action, e.related])).toEqual([
      ['FinishRun', { apiVersion: 'batch/v1', kind: 'Job', name: 'a-1', namespace: 'ns', uid: 'job-uid' }],
      ['StartRun', { apiVersion: 'batch/v1', kind: 'Job', name: 'a-2', namespace: 'ns' }],
      ['CreateJob', undefined],
    ]);
  });

  it('a repeat of a sent Event patches its series (count, lastObservedTime) instead of creating another', async () => {
    const { core, written, patches } = sink();
    const rec = new EventRecorder(core, silent, 'me');
    await rec.emit(sj('a'), 'Normal', 'RunHeld', 'held');
    await rec.flush();
    await rec.emit(sj('a'), 'Normal', 'RunHeld', 'held');
    await rec.flush();
    await rec.emit(sj('a'), 'Normal', 'RunHeld', 'held');
    await rec.flush();
    expect(written).toHaveLength(1);
    expect(patches.map((p) => [p.name, p.body.series.count])).toEqual([
      [written[0]!.metadata!.name, 2],
      [written[0]!.metadata!.name, 3],
    ]);
    expect(patches[1]!.body.series.lastObservedTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
  });

  it('aggregates the same Event for an object while it waits (a series from the first write)', async () => {
    const { core, written } = sink();
    let busy = true;
    const clock = new ManualClock();
    const rec = new EventRecorder(core, silent, 'me', { busy: () => busy, clock });
    await rec.emit(sj('a'), 'Normal', 'RunHeld', 'held');
    await clock.advance(20);
    await rec.emit(sj('a'), 'Normal', 'RunHeld', 'held');
    await rec.emit(sj('b'), 'Normal', 'RunHeld', 'held');
    busy = false;
    await rec.flush();
    expect(written.map((e) => [e.regarding?.name, e.series?.count])).toEqual([
      ['a', 2],
      ['b', undefined],
    ]);
    const a = written[0]!;
    expect(new Date(a.series!.lastObservedTime).getTime()).toBeGreaterThan(new Date(a.eventTime).getTime());
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
    expect(written.map((e) => e.regarding?.name)).toEqual(['b', 'c']);
    expect((await metrics.dropped.get()).values[0]?.value).toBe(1);
  });

  it('drops pending Events once stopped (leadership lost) and writes nothing after', async () => {
    const { core, written } = sink();
    const clock = new ManualClock();
    const rec = new EventRecorder(core, silent, 'me', { busy: () => true, clock });
    await rec.emit(sj('a'), 'Normal', 'RunStarted', 'a');
    rec.stop();
    await rec.emit(sj('b'), 'Normal', 'RunStarted', 'b');
    await clock.advance(200);
    expect(clock.pendingTimers()).toBe(0);
    expect(written).toHaveLength(0);
  });
});
