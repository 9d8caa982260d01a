// Why a released run's Pod does not run: what the kubelet, the scheduler and
// the Job controller say, as a value.
import type { CoreV1Event, V1Job, V1Pod } from '@kubernetes/client-node';
import { diagnose, started } from './stall.ts';

const waiting = (name: string, reason: string, message?: string, init = false): V1Pod => ({
  metadata: { name },
  status: {
    phase: 'Pending',
    [init ? 'initContainerStatuses' : 'containerStatuses']: [
      {
        name: 'main',
        image: 'x',
        imageID: '',
        ready: false,
        restartCount: 0,
        state: { waiting: { reason, ...(message ? { message } : {}) } },
      },
    ],
  },
});
const event = (reason: string, message: string, at: string): CoreV1Event => ({
  metadata: {},
  involvedObject: {},
  reason,
  message,
  lastTimestamp: new Date(at),
});

describe('started', () => {
  it('is true once the Job counts a ready, succeeded or failed Pod, or a Pod runs or ran', () => {
    const job: V1Job = { status: {} };
    expect(started(job, [])).toBe(false);
    expect(started({ status: { ready: 1 } }, [])).toBe(true);
    expect(started({ status: { failed: 1 } }, [])).toBe(true);
    expect(started(job, [{ status: { phase: 'Pending' } }])).toBe(false);
    expect(started(job, [{ status: { phase: 'Running' } }])).toBe(true);
    expect(started(job, [{ status: { phase: 'Succeeded' } }])).toBe(true);
  });
});

describe('diagnose', () => {
  it('names a container stuck waiting (init containers too), with the kubelet’s message', () => {
    expect(diagnose([waiting('p', 'ImagePullBackOff', 'Back-off pulling image "nope"')], [])).toEqual({
      reason: 'ImagePullBackOff',
      message: 'Pod p, container main: ImagePullBackOff: Back-off pulling image "nope"',
    });
    expect(diagnose([waiting('p', 'CreateContainerConfigError', undefined, true)], [])?.reason).toBe(
      'CreateContainerConfigError',
    );
  });

  it('says nothing of a container merely on its way (ContainerCreating)', () => {
    expect(diagnose([waiting('p', 'ContainerCreating')], [])).toBeUndefined();
  });

  it('names a Pod the scheduler cannot place', () => {
    const pod: V1Pod = {
      metadata: { name: 'p' },
      status: {
        phase: 'Pending',
        conditions: [
          { type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/3 nodes are available' },
        ],
      },
    };
    expect(diagnose([pod], [])).toEqual({
      reason: 'Unschedulable',
      message: 'Pod p cannot be scheduled: 0/3 nodes are available',
    });
  });

  it('without a Pod, takes the Job controller’s latest FailedCreate Event', () => {
    const events = [
      event('FailedCreate', 'older', '2026-06-01T12:00:00Z'),
      event('SuccessfulCreate', 'x', '2026-06-01T12:00:05Z'),
      event('FailedCreate', 'serviceaccount "x" not found', '2026-06-01T12:00:10Z'),
    ];
    expect(diagnose([], events)).toEqual({
      reason: 'FailedCreate',
      message: 'The Job controller cannot create the run\'s Pod: serviceaccount "x" not found',
    });
  });

  it('ignores FailedCreate Events once a Pod exists, and says nothing without a reason', () => {
    expect(
      diagnose(
        [{ metadata: { name: 'p' }, status: { phase: 'Pending' } }],
        [event('FailedCreate', 'x', '2026-06-01T12:00:00Z')],
      ),
    ).toBeUndefined();
    expect(diagnose([], [])).toBeUndefined();
  });
});
