// Events about a SingletonJob (core/v1, so `kubectl describe sj` shows them).
// Written only by the leader, through the fenced client.
import type { CoreV1Api } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { API_VERSION, KIND } from '../api/v1alpha1/singletonjob.ts';
import type { SingletonJob } from '../api/v1alpha1/singletonjob.ts';
import { objectKey } from '../kube/object-key.ts';
import { describeError } from '../kube/errors.ts';

export const COMPONENT = 'singleton-operator';

export class EventRecorder {
  private readonly core: CoreV1Api;
  private readonly logger: Logger;
  private readonly instance: string;

  constructor(core: CoreV1Api, logger: Logger, instance: string) {
    this.core = core;
    this.logger = logger;
    this.instance = instance;
  }

  /** Best effort: an Event that cannot be written is logged, never retried into a hot loop. */
  async emit(sj: SingletonJob, type: 'Normal' | 'Warning', reason: string, message: string): Promise<void> {
    const meta = sj.metadata!;
    const now = new Date();
    this.logger.info({ object: objectKey(sj), reason, type }, message);
    try {
      await this.core.createNamespacedEvent({
        namespace: meta.namespace!,
        body: {
          metadata: { name: `${meta.name!.slice(0, 200)}.${randomBytes(8).toString('hex')}`, namespace: meta.namespace! },
          involvedObject: { apiVersion: API_VERSION, kind: KIND, name: meta.name!, namespace: meta.namespace!, uid: meta.uid!, resourceVersion: meta.resourceVersion! },
          reason,
          message: message.slice(0, 1024),
          type,
          source: { component: COMPONENT },
          reportingComponent: COMPONENT,
          reportingInstance: this.instance,
          firstTimestamp: now,
          lastTimestamp: now,
          count: 1,
        },
      });
    } catch (err) {
      this.logger.warn({ object: objectKey(sj), reason, err: describeError(err) }, 'Event was not recorded');
    }
  }
}
