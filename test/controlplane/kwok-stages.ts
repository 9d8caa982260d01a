// The bare kwok binary has no default stages (only kwokctl injects them), so
// the config is assembled at setup time from the stage files that ship in the
// kwok Go module — never copied into this repository.
//
// Pods go through kwok's "general" lifecycle (create → ready → complete), whose
// per-stage delays can be set per Pod with annotations such as
// `pod-complete.stage.kwok.x-k8s.io/delay: "20s"` — tests use that to keep a
// run in flight. The default delays are shortened (1 s + up to 5 s of jitter
// upstream) so runs complete in about a second. Deletion is immediate (the
// "fast" pod-delete stage), and the chaos stage fails a Pod's containers when
// it carries the label `pod-container-running-failed.stage.kwok.x-k8s.io=true`.
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import path from 'node:path';

const STAGES = [
  'node/fast/node-initialize.yaml',
  'node/heartbeat-with-lease/node-heartbeat-with-lease.yaml',
  'pod/general/pod-create.yaml',
  'pod/general/pod-init-container-running.yaml',
  'pod/general/pod-init-container-completed.yaml',
  'pod/general/pod-ready.yaml',
  'pod/general/pod-complete.yaml',
  'pod/fast/pod-delete.yaml',
  'pod/chaos/pod-container-running-failed.yaml',
];

/** Default delay of each general pod stage, in ms (override: KWOK_POD_STAGE_DELAY_MS). */
function stageDelayMs(): number {
  const raw = process.env.KWOK_POD_STAGE_DELAY_MS ?? '200';
  const value = Number(raw);
  if (!Number.isInteger(value) || value < 0)
    throw new Error(`KWOK_POD_STAGE_DELAY_MS must be a non-negative integer, got "${raw}"`);
  return value;
}

const JOB_OWNER_SELECTOR =
  /\n(\s*)- key: '\.metadata\.ownerReferences\.\[\]\.kind'\n\s*operator: 'In'\n\s*values:\n\s*- 'Job'/;

/**
 * Upstream completes only Pods a Job owns. A Pod orphaned from its Job
 * (`kubectl delete job --cascade=orphan`) would then run for ever, where a real
 * kubelet ends it when its command exits: complete every Pod that is meant to
 * end (restartPolicy Never or OnFailure) instead.
 */
function completeOrphans(text: string): string {
  if (!JOB_OWNER_SELECTOR.test(text))
    throw new Error('kwok pod-complete stage: the ownerReferences selector changed upstream; update completeOrphans()');
  return text.replace(
    JOB_OWNER_SELECTOR,
    (_m, indent: string) =>
      `\n${indent}- key: '.spec.restartPolicy'\n${indent}  operator: 'In'\n${indent}  values:\n${indent}  - 'Never'\n${indent}  - 'OnFailure'`,
  );
}

export function writeKwokConfig(file: string, stagesDir: string): string {
  const delay = stageDelayMs();
  const docs = STAGES.map((rel) => {
    const full = path.join(stagesDir, rel);
    if (!existsSync(full))
      throw new Error(`kwok stage file missing: ${full} (is the kwok module in the Go module cache?)`);
    let text = readFileSync(full, 'utf8').trim();
    if (rel.startsWith('pod/general/')) {
      text = text
        .replace(/durationMilliseconds: 1000/g, `durationMilliseconds: ${delay}`)
        // Drop the default jitter rather than set it to 0: kwok uses the jitter
        // as the delay whenever it is not above the delay, so a 0 jitter would
        // also cancel the per-Pod delay annotations.
        .replace(/\n\s*jitterDurationMilliseconds: 5000/g, '');
    }
    if (rel === 'pod/general/pod-complete.yaml') text = completeOrphans(text);
    return text;
  });
  writeFileSync(file, docs.join('\n---\n') + '\n');
  return file;
}
