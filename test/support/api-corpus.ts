// Valid and invalid SingletonJobs, shared by the unit test (zod) and the
// integration test (the API server, dry-run): both must give the same verdict.
import { API_VERSION, KIND } from '../../src/api/v1alpha1/singletonjob.ts';

const template = { spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'main', image: 'busybox', command: ['true'] }] } } } };

function sj(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: API_VERSION, kind: KIND, metadata: { name }, spec: { jobTemplate: template, ...spec } };
}

export interface CorpusEntry {
  name: string;
  object: Record<string, unknown>;
  valid: boolean;
  /** A fragment the API server's message must contain, for invalid entries. */
  message?: string;
  /** Invalid entries: the API server's whole message, as kubectl prints it after `Error from server (Invalid): error when creating "STDIN": `. */
  expected?: string;
}

export const corpus: CorpusEntry[] = [
  { name: 'minimal on-demand', object: sj('ok-minimal', {}), valid: true },
  { name: 'five-field schedule with zone', object: sj('ok-cron', { schedule: '0 0 * * *', timeZone: 'Europe/Berlin' }), valid: true },
  { name: 'seconds schedule', object: sj('ok-seconds', { schedule: '*/5 * * * * *' }), valid: true },
  { name: 'macro', object: sj('ok-macro', { schedule: '@hourly', concurrencyPolicy: 'Replace', suspend: true }), valid: true },
  {
    name: 'all knobs',
    object: sj('ok-knobs', {
      schedule: '30 2 * * 1-5',
      startingDeadlineSeconds: 60,
      successfulJobsHistoryLimit: 0,
      failedJobsHistoryLimit: 5,
      jobTemplate: { metadata: { labels: { team: 'pay' } }, spec: { ...template.spec, parallelism: 1, completions: 1, backoffLimit: 2 } },
    }),
    valid: true,
  },
  { name: 'bad policy', object: sj('bad-policy', { concurrencyPolicy: 'Allow' }), valid: false, message: 'concurrencyPolicy' },
  { name: 'four fields', object: sj('bad-fields', { schedule: '* * * *' }), valid: false, message: 'spec.schedule' },
  { name: 'TZ inside schedule', object: sj('bad-tz-prefix', { schedule: 'TZ=UTC 0 * * * *' }), valid: false, message: 'spec.schedule' },
  { name: 'zero deadline', object: sj('bad-deadline', { startingDeadlineSeconds: 0 }), valid: false, message: 'startingDeadlineSeconds' },
  { name: 'negative history', object: sj('bad-history', { successfulJobsHistoryLimit: -1 }), valid: false, message: 'successfulJobsHistoryLimit' },
  { name: 'missing template', object: { apiVersion: API_VERSION, kind: KIND, metadata: { name: 'bad-no-template' }, spec: {} }, valid: false, message: 'jobTemplate' },
  { name: 'no containers', object: sj('bad-no-containers', { jobTemplate: { spec: { template: { spec: { containers: [] } } } } }), valid: false, message: 'containers' },
  { name: 'parallelism 2', object: sj('bad-parallelism', { jobTemplate: { spec: { ...template.spec, parallelism: 2 } } }), valid: false, message: 'parallelism must be 1' },
  { name: 'completions 3', object: sj('bad-completions', { jobTemplate: { spec: { ...template.spec, completions: 3 } } }), valid: false, message: 'completions must be 1' },
  { name: 'suspended template', object: sj('bad-suspend', { jobTemplate: { spec: { ...template.spec, suspend: true } } }), valid: false, message: 'suspend the SingletonJob' },
  {
    name: 'restartPolicy Always',
    object: sj('bad-restart', { jobTemplate: { spec: { template: { spec: { restartPolicy: 'Always', containers: [{ name: 'main', image: 'busybox' }] } } } } }),
    valid: false,
    message: 'restartPolicy',
  },
  { name: '@every (not supported)', object: sj('bad-every', { schedule: '@every 5m' }), valid: false, message: 'spec.schedule' },
  { name: 'a bad item of schedules', object: sj('bad-schedules-item', { schedules: ['0 * * * *', '@every 1h'] }), valid: false, message: 'spec.schedules[1]' },
  { name: 'schedule and schedules', object: sj('bad-both-schedules', { schedule: '0 * * * *', schedules: ['30 * * * *'] }), valid: false, message: 'spec.schedules' },
  { name: 'zone with spaces', object: sj('bad-zone', { schedule: '0 0 * * *', timeZone: 'Europe Berlin' }), valid: false, message: 'timeZone' },
];
