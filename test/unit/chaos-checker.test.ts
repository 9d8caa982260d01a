// Each check of the chaos checker must be able to fail: a clean synthetic
// history passes, and one history per invariant breaks exactly that one.
import { checkHistory, checkOneInFlight, checkSlots, checkTokens, checkDeposedWrites, checkRecovery, checkCrashLoops, checkHistoryComplete, checkBadInput, describeViolations } from '../chaos/checker.ts';
import { emptyHistory, type History, type JobRecord, type PodRecord, type AuditWrite } from '../chaos/history.ts';

const T0 = Date.parse('2030-01-01T00:00:00Z');
const MIN = 60_000;
const settle = { settleMs: 10_000 };
const SJ_UID = 'uid-sj';

function job(i: number, o: Partial<JobRecord> = {}): JobRecord {
  const slot = new Date(T0 + i * MIN).toISOString();
  return {
    namespace: 'ns',
    name: `nightly-${i}`,
    uid: `job-${i}`,
    owner: 'nightly',
    ownerUid: SJ_UID,
    slot,
    token: String(100 + i),
    templateTokens: [String(100 + i)],
    createdRv: String(1000 + i * 10),
    createdAt: T0 + i * MIN + 500,
    terminalRv: String(1000 + i * 10 + 5),
    terminalAt: T0 + i * MIN + 2000,
    ...o,
  };
}

function pod(i: number, o: Partial<PodRecord> = {}): PodRecord {
  return {
    namespace: 'ns',
    name: `nightly-${i}-abcde`,
    uid: `pod-${i}`,
    jobName: `nightly-${i}`,
    jobUid: `job-${i}`,
    createdRv: String(1000 + i * 10 + 1),
    createdAt: T0 + i * MIN + 600,
    terminalRv: String(1000 + i * 10 + 4),
    terminalAt: T0 + i * MIN + 1800,
    phase: 'Succeeded',
    ...o,
  };
}

function write(user: string, receivedMs: number, o: Partial<AuditWrite> = {}): AuditWrite {
  return { user, verb: 'update', resource: 'leases', namespace: 'op', name: 'singleton-operator', code: 200, receivedUs: receivedMs * 1000, completedUs: receivedMs * 1000 + 2000, ...o };
}

/** Five minutely runs on a healthy cluster, replica-a leading throughout. */
function clean(): History {
  const h = emptyHistory(42, 'unit');
  h.startedAt = T0 - 5_000;
  h.endedAt = T0 + 5 * MIN - 5_000;
  h.replicas = ['replica-a', 'replica-b', 'replica-c'];
  h.lease = { namespace: 'op', name: 'singleton-operator' };
  h.leaseDurationMs = 6_000;
  h.recoveryBoundMs = 20_000;
  h.singletonJobs = [{ namespace: 'ns', name: 'nightly', uid: SJ_UID, schedule: '* * * * *', createdAt: T0 - 4_000 }];
  h.jobs = [0, 1, 2, 3, 4].map((i) => job(i));
  h.pods = [0, 1, 2, 3, 4].map((i) => pod(i));
  h.writes = [
    write('replica-a', T0 - 3_000),
    ...[0, 1, 2, 3, 4].map((i) => write('replica-a', T0 + i * MIN + 400, { verb: 'create', resource: 'jobs', namespace: 'ns', name: `nightly-${i}`, code: 201 })),
    write('replica-b', T0 - 2_000, { code: 409 }),
  ];
  return h;
}

test('a clean history has no violations', () => {
  const h = clean();
  expect(checkHistory(h, settle)).toEqual([]);
  expect(describeViolations(h, [])).toBe('No violations.');
});

test('two non-terminal Pods of one SingletonJob at once are caught, by commit order', () => {
  const h = clean();
  // The Pod of run 2 is created (rv 1021) while run 1's Pod only turns terminal at rv 1030.
  h.pods[1] = pod(1, { terminalRv: '1030' });
  h.pods[2] = pod(2, { createdRv: '1021' });
  const v = checkOneInFlight(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(/two non-terminal Pods at once: Pod nightly-1-abcde .* Pod nightly-2-abcde/);
});

test('a Pod that never turns terminal overlaps every later Pod; a deleted one stops counting at its deletion', () => {
  const h = clean();
  h.pods[0] = pod(0, { terminalRv: undefined, terminalAt: undefined, phase: 'Running' });
  expect(checkOneInFlight(h)).toHaveLength(4);
  h.pods[0] = pod(0, { terminalRv: undefined, terminalAt: undefined, deletedRv: '1006', deletedAt: T0 + 3000 });
  expect(checkOneInFlight(h)).toEqual([]);
});

test('a Pod replacement inside one Job (old Pod still running) is caught', () => {
  const h = clean();
  h.pods.push(pod(3, { name: 'nightly-3-zzzzz', uid: 'pod-3b', createdRv: '1032', terminalRv: '1034' }));
  expect(checkOneInFlight(h)).toHaveLength(1);
});

test('a slot run twice is caught', () => {
  const h = clean();
  h.jobs.push(job(2, { name: 'nightly-2-again', uid: 'job-2b', createdRv: '1060', token: '200', templateTokens: ['200'] }));
  const v = checkSlots(h, settle);
  expect(v.map((x) => x.check)).toEqual(['slot-at-most-once']);
  expect(v[0]?.message).toMatch(/ran 2 times: Job nightly-2 .*Job nightly-2-again/);
});

test('a missed slot is caught when the cluster was healthy, and excused during a fault', () => {
  const h = clean();
  h.jobs = h.jobs.filter((j) => j.name !== 'nightly-3');
  h.pods = h.pods.filter((p) => p.jobName !== 'nightly-3');
  const v = checkSlots(h, settle);
  expect(v.map((x) => x.check)).toEqual(['slot-exactly-once']);
  expect(v[0]?.message).toContain(new Date(T0 + 3 * MIN).toISOString());
  h.faults.push({ kind: 'apiserver-restart', target: 'kube-apiserver', detail: 'SIGKILL', startedAt: T0 + 3 * MIN - 2000, healedAt: T0 + 3 * MIN + 1000, recoveredAt: T0 + 3 * MIN + 4000 });
  expect(checkSlots(h, settle)).toEqual([]);
});

test('a slot skipped because the previous run was still in flight is allowed (Forbid)', () => {
  const h = clean();
  h.jobs = h.jobs.filter((j) => j.name !== 'nightly-3');
  h.jobs[2] = job(2, { terminalAt: T0 + 3 * MIN + 5_000 });
  expect(checkSlots(h, settle)).toEqual([]);
});

test('a run for a time that is not a slot of the schedule is caught', () => {
  const h = clean();
  h.jobs[4] = job(4, { slot: new Date(T0 + 4 * MIN + 30_000).toISOString() });
  const v = checkSlots(h, settle);
  expect(v.map((x) => x.check)).toContain('slot-off-schedule');
});

test('a run created before its slot was due is caught (a leader with a clock running ahead)', () => {
  const h = clean();
  h.jobs[3] = job(3, { createdAt: T0 + 3 * MIN - 170_000 });
  const v = checkSlots(h, settle);
  expect(v.map((x) => x.check)).toEqual(['slot-early']);
  expect(v[0]?.message).toContain('170.0 s before the slot was due');
});

test('slots honour the time zone', () => {
  const h = clean();
  h.singletonJobs[0] = { ...h.singletonJobs[0]!, schedule: '30 * * * *', timeZone: 'Asia/Kolkata' };
  // 00:00Z is 05:30 in Kolkata: minute 30 there.
  h.jobs = [job(0)];
  h.pods = [pod(0)];
  expect(checkSlots(h, settle)).toEqual([]);
});

test('tokens that do not strictly increase in creation order are caught', () => {
  const h = clean();
  h.jobs[3] = job(3, { token: '102', templateTokens: ['102'] });
  const v = checkTokens(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(/went from 102 \(Job nightly-2.*to 102 \(Job nightly-3/);
});

test('a token outside 2^53, missing, or not in the workload env is caught', () => {
  const h = clean();
  h.jobs[4] = job(4, { token: String(2n ** 53n), templateTokens: [String(2n ** 53n)] });
  expect(checkTokens(h).map((v) => v.message)).toEqual([expect.stringContaining('outside 1 … 2^53−1')]);
  h.jobs[4] = job(4, { token: undefined });
  expect(checkTokens(h)[0]?.message).toContain('no readable fencing token');
  h.jobs[4] = job(4, { templateTokens: ['7'] });
  expect(checkTokens(h)[0]?.message).toContain("in its containers' env");
});

/** Replica-b takes over from replica-a at 2:10 (replica-a's later runs are dropped). */
function takeover(): History {
  const h = clean();
  const at = T0 + 2 * MIN + 10_000;
  h.writes = h.writes.filter((w) => w.receivedUs < at * 1000);
  h.writes.push(write('replica-b', at));
  return h;
}

test('a deposed leader whose write succeeds after the successor took the Lease is caught', () => {
  const h = takeover();
  h.writes.push(write('replica-a', T0 + 2 * MIN + 12_000, { verb: 'update', resource: 'singletonjobs', subresource: 'status', namespace: 'ns', name: 'nightly' }));
  const v = checkDeposedWrites(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(/Replica replica-a wrote update singletonjobs\/status ns\/nightly .* after replica replica-b had taken the Lease/);
});

test('a deposed write that was refused, or that was in flight when the successor acquired, is not a violation', () => {
  const h = takeover();
  h.writes.push(write('replica-a', T0 + 2 * MIN + 12_000, { verb: 'create', resource: 'jobs', namespace: 'ns', name: 'x', code: 409 }));
  h.writes.push(write('replica-a', T0 + 2 * MIN + 10_001, { verb: 'create', resource: 'jobs', namespace: 'ns', name: 'y', code: 201 }));
  expect(checkDeposedWrites(h)).toEqual([]);
});

test('a write by a replica that never held the Lease is caught', () => {
  const h = clean();
  h.writes.unshift(write('replica-c', T0 - 4_000, { verb: 'update', resource: 'singletonjobs', subresource: 'status', namespace: 'ns', name: 'nightly', code: 200 }));
  expect(checkDeposedWrites(h)[0]?.message).toContain('no replica had acquired the Lease');
});

test('a deposed leader\'s late Event create is not judged (Events cannot be fenced and decide nothing); fenced writes still are', () => {
  const h = takeover();
  h.writes.push(write('replica-a', T0 + 2 * MIN + 12_000, { verb: 'create', resource: 'events', namespace: 'ns', name: 'nightly.abc', code: 201 }));
  expect(checkDeposedWrites(h)).toEqual([]);
  h.writes.push(write('replica-a', T0 + 2 * MIN + 13_000, { verb: 'delete', resource: 'pods', namespace: 'ns', name: 'nightly-1-abcde', code: 200 }));
  h.writes.push(write('replica-a', T0 + 2 * MIN + 14_000, { verb: 'update', resource: 'leases', namespace: 'other', name: 'x', code: 200 }));
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([expect.stringContaining('delete pods ns/nightly-1-abcde'), expect.stringContaining('update leases other/x')]);
});

test('a deposed leader\'s late create of the Job it reserved before the takeover is harmless; a Job it never reserved is caught', () => {
  const h = takeover();
  const acquired = T0 + 2 * MIN + 10_000;
  // replica-a reserved run 3 (status write) before replica-b acquired; its delayed create lands after.
  h.writes.push(write('replica-a', acquired - 500, { verb: 'update', resource: 'singletonjobs', subresource: 'status', namespace: 'ns', name: 'nightly', code: 200 }));
  h.jobs[3] = job(3, { createdAt: acquired + 3_000 });
  h.writes.push(write('replica-a', acquired + 3_000, { verb: 'create', resource: 'jobs', namespace: 'ns', name: 'nightly-3', code: 201 }));
  expect(checkDeposedWrites(h)).toEqual([]);
  // Without that reservation, the same create is a deposed leader's new run.
  h.writes = h.writes.filter((w) => !(w.resource === 'singletonjobs' && w.user === 'replica-a'));
  const v = checkDeposedWrites(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(/Replica replica-a wrote create jobs ns\/nightly-3 \(HTTP 201\)/);
});

test('a slow or missing recovery is caught', () => {
  const h = clean();
  h.faults.push({ kind: 'kill-leader', target: 'replica-a', detail: 'SIGKILL', startedAt: T0, healedAt: T0 + 1000, recoveredAt: T0 + 30_000 });
  h.faults.push({ kind: 'partition', target: 'replica-b', detail: 'blackhole 8s', startedAt: T0, healedAt: T0 + 8000 });
  h.faults.push({ kind: 'pause-after-reserve', target: 'replica-a', detail: 'hook never fired', startedAt: T0, healedAt: T0, skipped: 'no reservation' });
  const v = checkRecovery(h);
  expect(v.map((x) => x.message)).toEqual([expect.stringContaining('recovery took 29.0 s'), expect.stringContaining('never became healthy')]);
});

test('an unexpected exit is a crash-loop violation; a harness-caused one is not', () => {
  const h = clean();
  h.exits.push({ replica: 'replica-a', at: T0, code: null, signal: 'SIGKILL', expected: true });
  expect(checkCrashLoops(h)).toEqual([]);
  h.exits.push({ replica: 'replica-b', at: T0 + 5, code: 1, signal: null, expected: false, logTail: 'Error: boom' });
  expect(checkCrashLoops(h)[0]?.message).toMatch(/replica-b exited on its own .*code 1[\s\S]*Error: boom/);
});

test('watch gaps and accepted bad input are reported', () => {
  const h = clean();
  h.gaps.push({ resource: 'pods', from: T0, to: T0 + 2000, missed: 1 });
  h.gaps.push({ resource: 'jobs', from: T0, to: T0 + 2000, missed: 0 });
  h.badInput.push({ name: 'bad-cron', description: 'schedule "61 * * * *"', outcome: 'accepted', message: 'no condition after 20 s' });
  h.badInput.push({ name: 'bad-type', description: 'schedule is a number', outcome: 'rejected', message: 'spec.schedule: Invalid value' });
  expect(checkHistoryComplete(h)).toHaveLength(1);
  expect(checkBadInput(h).map((v) => v.message)).toEqual([expect.stringContaining('"bad-cron"')]);
});

test('the account names the first violation in full and the fault around it', () => {
  const h = clean();
  h.jobs[3] = job(3, { token: '50', templateTokens: ['50'] });
  h.faults.push({ kind: 'pause-leader', target: 'replica-a', detail: 'SIGSTOP 9s', startedAt: T0 + 3 * MIN - 1000, healedAt: T0 + 3 * MIN + 8000, recoveredAt: T0 + 3 * MIN + 9000 });
  const text = describeViolations(h, checkHistory(h, settle));
  expect(text).toMatch(/^1 violation\(s\)\. First, at \+185\.5s \[tokens-increase\]/);
  expect(text).toContain('Faults active around it: pause-leader on replica-a');
  expect(text).toContain('Reproduce with --seed 42.');
});

test('a Job that was never let run (created suspended, deleted as a stray) is not a second run of its slot; once started it is', () => {
  const h = clean();
  // A deposed leader's late create re-made run 2's Job after it was deleted: suspended, never a Pod.
  h.jobs.push(job(2, { uid: 'job-2-late', token: '102', createdRv: '1025', createdAt: T0 + 2 * MIN + 900, started: false, terminalRv: undefined, terminalAt: undefined, deletedRv: '1026', deletedAt: T0 + 2 * MIN + 950 }));
  expect(checkSlots(h, settle)).toEqual([]);
  expect(checkTokens(h)).toEqual([]);
  h.jobs[h.jobs.length - 1]!.started = true;
  expect(checkSlots(h, settle).map((v) => v.check)).toEqual(['slot-at-most-once']);
  // And a Pod of it counts as a start even if the recorder never saw it unsuspended.
  h.jobs[h.jobs.length - 1]!.started = false;
  h.pods.push(pod(2, { uid: 'pod-2-late', jobUid: 'job-2-late' }));
  expect(checkSlots(h, settle).map((v) => v.check)).toEqual(['slot-at-most-once']);
});

test('a deposed leader\'s late create that re-makes a deleted run\'s Job is harmless only if that Job never ran', () => {
  const h = takeover();
  const acquired = T0 + 2 * MIN + 10_000;
  h.writes.push(write('replica-a', acquired - 500, { verb: 'update', resource: 'singletonjobs', subresource: 'status', namespace: 'ns', name: 'nightly', code: 200 }));
  // nightly-1 existed (and was deleted) before; the late create re-makes the name.
  h.jobs.push(job(1, { uid: 'job-1-late', createdAt: acquired + 3_000, started: false }));
  h.writes.push(write('replica-a', acquired + 3_000, { verb: 'create', resource: 'jobs', namespace: 'ns', name: 'nightly-1', code: 201 }));
  expect(checkDeposedWrites(h)).toEqual([]);
  h.jobs[h.jobs.length - 1]!.started = true;
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([expect.stringContaining('create jobs ns/nightly-1 (HTTP 201)')]);
});
