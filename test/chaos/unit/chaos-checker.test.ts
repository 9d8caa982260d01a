// Each check of the chaos checker must be able to fail: a clean synthetic
// history passes, and one history per invariant breaks exactly that one.
import {
  checkHistory,
  checkOneInFlight,
  checkSlots,
  checkTokens,
  checkStatusFences,
  checkDeposedWrites,
  checkRecovery,
  checkCrashLoops,
  checkHistoryComplete,
  checkBadInput,
  checkForbidden,
  describeViolations,
} from '../checker.ts';
import {
  checkExpectations,
  checkInstallations,
  checkPodTokens,
  checkRequests,
  checkRetries,
  checkStrayJobs,
  checkWedged,
} from '../checker-actions.ts';
import { emptyHistory, type History, type JobRecord, type PodRecord, type AuditWrite } from '../history.ts';

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
  return {
    user,
    verb: 'update',
    resource: 'leases',
    namespace: 'op',
    name: 'singleton-operator',
    code: 200,
    receivedUs: receivedMs * 1000,
    completedUs: receivedMs * 1000 + 2000,
    ...o,
  };
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
  h.singletonJobs = [
    {
      namespace: 'ns',
      name: 'nightly',
      uid: SJ_UID,
      schedule: '* * * * *',
      createdAt: T0 - 4_000,
      fences: [
        { rv: '990', at: T0 - 3_000, leaderTerm: 900 },
        { rv: '1001', at: T0 + 450, leaderTerm: 900, currentToken: 100 },
        { rv: '1011', at: T0 + MIN + 450, leaderTerm: 1005, currentToken: 101 },
      ],
    },
  ];
  h.jobs = [0, 1, 2, 3, 4].map((i) => job(i));
  h.pods = [0, 1, 2, 3, 4].map((i) => pod(i));
  h.writes = [
    write('replica-a', T0 - 3_000),
    ...[0, 1, 2, 3, 4].map((i) =>
      write('replica-a', T0 + i * MIN + 400, {
        verb: 'create',
        resource: 'jobs',
        namespace: 'ns',
        name: `nightly-${i}`,
        code: 201,
      }),
    ),
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
  h.jobs.push(
    job(2, { name: 'nightly-2-again', uid: 'job-2b', createdRv: '1060', token: '200', templateTokens: ['200'] }),
  );
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
  h.faults.push({
    kind: 'apiserver-restart',
    target: 'kube-apiserver',
    detail: 'SIGKILL',
    startedAt: T0 + 3 * MIN - 2000,
    healedAt: T0 + 3 * MIN + 1000,
    recoveredAt: T0 + 3 * MIN + 4000,
  });
  expect(checkSlots(h, settle)).toEqual([]);
});

test('a slot skipped because the previous run was still in flight is allowed (Forbid)', () => {
  const h = clean();
  h.jobs = h.jobs.filter((j) => j.name !== 'nightly-3');
  h.jobs[2] = job(2, { terminalAt: T0 + 3 * MIN + 5_000 });
  expect(checkSlots(h, settle)).toEqual([]);
});

test('a slot due while a failed attempt waits out its backoff before the next is held, also when the history ends first; without retry budget it is missed', () => {
  const h = clean();
  h.singletonJobs[0]!.backoffLimit = 2;
  // The run of slot 2 failed its first attempt just before slot 3; its next attempt is not in the history yet.
  h.jobs = h.jobs.filter((j) => j.name !== 'nightly-3' && j.name !== 'nightly-4');
  h.pods = h.pods.filter((p) => p.jobName !== 'nightly-3' && p.jobName !== 'nightly-4');
  h.endedAt = T0 + 3 * MIN + 20_000;
  h.jobs[2] = job(2, { outcome: 'Failed', terminalAt: T0 + 2 * MIN + 50_000 });
  expect(checkSlots(h, settle)).toEqual([]);
  h.singletonJobs[0]!.backoffLimit = 0;
  expect(checkSlots(h, settle).map((v) => v.check)).toEqual(['slot-exactly-once']);
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
  h.writes.push(
    write('replica-a', T0 + 2 * MIN + 12_000, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
    }),
  );
  const v = checkDeposedWrites(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(
    /Replica replica-a wrote update singletonjobs\/status ns\/nightly .* after replica replica-b had taken the Lease/,
  );
});

test('a deposed write that was refused, or that was in flight when the successor acquired, is not a violation', () => {
  const h = takeover();
  h.writes.push(
    write('replica-a', T0 + 2 * MIN + 12_000, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'x',
      code: 409,
    }),
  );
  h.writes.push(
    write('replica-a', T0 + 2 * MIN + 10_001, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'y',
      code: 201,
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
});

test('a write by a replica that never held the Lease is caught', () => {
  const h = clean();
  h.writes.unshift(
    write('replica-c', T0 - 4_000, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
      code: 200,
    }),
  );
  expect(checkDeposedWrites(h)[0]?.message).toContain('no replica had acquired the Lease');
});

test("a deposed leader's late Event create is not judged (Events cannot be fenced and decide nothing); fenced writes still are", () => {
  const h = takeover();
  h.writes.push(
    write('replica-a', T0 + 2 * MIN + 12_000, {
      verb: 'create',
      resource: 'events',
      namespace: 'ns',
      name: 'nightly.abc',
      code: 201,
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
  // A Pod the successor's run created after the takeover.
  h.writes.push(
    write('replica-a', T0 + 3 * MIN + 5_000, {
      verb: 'delete',
      resource: 'pods',
      namespace: 'ns',
      name: 'nightly-3-abcde',
      code: 200,
    }),
  );
  h.writes.push(
    write('replica-a', T0 + 2 * MIN + 14_000, {
      verb: 'update',
      resource: 'leases',
      namespace: 'other',
      name: 'x',
      code: 200,
    }),
  );
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([
    expect.stringContaining('update leases other/x'),
    expect.stringContaining('delete pods ns/nightly-3-abcde'),
  ]);
});

test("a deposed leader's late create of the Job it reserved before the takeover is harmless; a Job it never reserved is caught", () => {
  const h = takeover();
  const acquired = T0 + 2 * MIN + 10_000;
  // replica-a reserved run 3 (status write) before replica-b acquired; its delayed create lands after.
  h.writes.push(
    write('replica-a', acquired - 500, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
      code: 200,
    }),
  );
  h.jobs[3] = job(3, { createdAt: acquired + 3_000 });
  h.writes.push(
    write('replica-a', acquired + 3_000, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-3',
      code: 201,
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
  // Without that reservation, the same create is a deposed leader's new run.
  h.writes = h.writes.filter((w) => !(w.resource === 'singletonjobs' && w.user === 'replica-a'));
  const v = checkDeposedWrites(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(/Replica replica-a wrote create jobs ns\/nightly-3 \(HTTP 201\)/);
});

test('a slow or missing recovery is caught', () => {
  const h = clean();
  h.faults.push({
    kind: 'kill-leader',
    target: 'replica-a',
    detail: 'SIGKILL',
    startedAt: T0,
    healedAt: T0 + 1000,
    recoveredAt: T0 + 30_000,
  });
  h.faults.push({ kind: 'partition', target: 'replica-b', detail: 'blackhole 8s', startedAt: T0, healedAt: T0 + 8000 });
  h.faults.push({
    kind: 'pause-after-reserve',
    target: 'replica-a',
    detail: 'hook never fired',
    startedAt: T0,
    healedAt: T0,
    skipped: 'no reservation',
  });
  const v = checkRecovery(h);
  expect(v.map((x) => x.message)).toEqual([
    expect.stringContaining('recovery took 29.0 s'),
    expect.stringContaining('never became healthy'),
  ]);
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
  h.badInput.push({
    name: 'bad-cron',
    description: 'schedule "61 * * * *"',
    outcome: 'accepted',
    message: 'no condition after 20 s',
  });
  h.badInput.push({
    name: 'bad-type',
    description: 'schedule is a number',
    outcome: 'rejected',
    message: 'spec.schedule: Invalid value',
  });
  expect(checkHistoryComplete(h)).toHaveLength(1);
  expect(checkBadInput(h).map((v) => v.message)).toEqual([expect.stringContaining('"bad-cron"')]);
});

test('the account names the first violation in full and the fault around it', () => {
  const h = clean();
  h.jobs[3] = job(3, { token: '50', templateTokens: ['50'] });
  h.faults.push({
    kind: 'pause-leader',
    target: 'replica-a',
    detail: 'SIGSTOP 9s',
    startedAt: T0 + 3 * MIN - 1000,
    healedAt: T0 + 3 * MIN + 8000,
    recoveredAt: T0 + 3 * MIN + 9000,
  });
  const text = describeViolations(h, checkHistory(h, settle));
  expect(text).toMatch(/^1 violation\(s\)\. First, at \+185\.5s \[tokens-increase\]/);
  expect(text).toContain('Faults active around it: pause-leader on replica-a');
  expect(text).toContain('Reproduce with --seed 42.');
});

test('a Job that was never let run (created suspended, deleted as a stray) is not a second run of its slot; once started it is', () => {
  const h = clean();
  // A deposed leader's late create re-made run 2's Job after it was deleted: suspended, never a Pod.
  h.jobs.push(
    job(2, {
      uid: 'job-2-late',
      token: '102',
      createdRv: '1025',
      createdAt: T0 + 2 * MIN + 900,
      started: false,
      terminalRv: undefined,
      terminalAt: undefined,
      deletedRv: '1026',
      deletedAt: T0 + 2 * MIN + 950,
    }),
  );
  expect(checkSlots(h, settle)).toEqual([]);
  expect(checkTokens(h)).toEqual([]);
  h.jobs[h.jobs.length - 1]!.started = true;
  expect(checkSlots(h, settle).map((v) => v.check)).toEqual(['slot-at-most-once']);
  // And a Pod of it counts as a start even if the recorder never saw it unsuspended.
  h.jobs[h.jobs.length - 1]!.started = false;
  h.pods.push(pod(2, { uid: 'pod-2-late', jobUid: 'job-2-late' }));
  expect(checkSlots(h, settle).map((v) => v.check)).toEqual(['slot-at-most-once']);
});

test("a deposed leader's late create that re-makes a deleted run's Job is harmless only if that Job never ran", () => {
  const h = takeover();
  const acquired = T0 + 2 * MIN + 10_000;
  h.writes.push(
    write('replica-a', acquired - 500, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
      code: 200,
    }),
  );
  // nightly-1 existed (and was deleted) before; the late create re-makes the name.
  h.jobs.push(job(1, { uid: 'job-1-late', createdAt: acquired + 3_000, started: false }));
  h.writes.push(
    write('replica-a', acquired + 3_000, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-1',
      code: 201,
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
  h.jobs[h.jobs.length - 1]!.started = true;
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([
    expect.stringContaining('create jobs ns/nightly-1 (HTTP 201)'),
  ]);
});

// ---- Issue 12: guarantees per namespace/name, retries, requests, installations, user actions ----

const NEW_UID = 'uid-sj-2';

/** nightly deleted after run 2 (at 2:30) and re-created (at 2:40) under the same name: runs 3 and 4 are the new object's. */
function recreated(): History {
  const h = clean();
  h.singletonJobs[0]!.deletedAt = T0 + 2 * MIN + 30_000;
  h.singletonJobs.push({
    namespace: 'ns',
    name: 'nightly',
    uid: NEW_UID,
    schedule: '* * * * *',
    createdAt: T0 + 2 * MIN + 40_000,
  });
  h.jobs = h.jobs.map((j, i) => (i >= 3 ? { ...j, ownerUid: NEW_UID } : j));
  return h;
}

test('guarantees hold per namespace/name across delete and re-create: a clean re-create passes', () => {
  expect(checkHistory(recreated(), settle)).toEqual([]);
});

test("a Pod of the deleted object still running when the re-created object's first Pod starts is caught", () => {
  const h = recreated();
  // Orphaned by --cascade=orphan: run 2's Pod only ends at rv 1045, after run 3's Pod (rv 1031).
  h.pods[2] = pod(2, { terminalRv: '1035', terminalAt: T0 + 3 * MIN + 5_000 });
  const v = checkOneInFlight(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(
    /SingletonJob ns\/nightly had two non-terminal Pods at once: Pod nightly-2-abcde .* Pod nightly-3-abcde/,
  );
});

test("a re-created object whose tokens start at or below its predecessor's is caught", () => {
  const h = recreated();
  h.jobs[3] = { ...h.jobs[3]!, token: '102', templateTokens: ['102'] };
  h.pods[3] = pod(3, { token: '102' });
  const v = checkTokens(h);
  expect(v).toHaveLength(1);
  expect(v[0]?.message).toMatch(
    /went from 102 \(Job nightly-2 of an earlier object of that name, uid uid-sj.* to 102 \(Job nightly-3/,
  );
});

test('a slot run by an object and again by its re-created successor ran twice', () => {
  const h = recreated();
  h.jobs.push(
    job(2, {
      name: 'nightly-2-b',
      uid: 'job-2b',
      ownerUid: NEW_UID,
      token: '150',
      templateTokens: ['150'],
      createdRv: '1026',
      createdAt: T0 + 2 * MIN + 45_000,
    }),
  );
  expect(checkSlots(h, settle).map((v) => v.check)).toEqual(['slot-at-most-once']);
});

test('no slot is due while the object is deleted; a slot held by an orphaned Pod still running is not missed', () => {
  const h = recreated();
  h.singletonJobs[0]!.deletedAt = T0 + 2 * MIN + 30_000;
  h.singletonJobs[1]!.createdAt = T0 + 3 * MIN + 30_000;
  h.jobs = h.jobs.filter((j) => j.name !== 'nightly-3');
  h.pods = h.pods.filter((p) => p.jobName !== 'nightly-3');
  expect(checkSlots(h, settle)).toEqual([]);
  // The new object exists at 3:00 but its run waits for run 2's orphaned Pod (its Job already deleted).
  h.singletonJobs[1]!.createdAt = T0 + 2 * MIN + 40_000;
  expect(checkSlots(h, settle).map((v) => v.check)).toEqual(['slot-exactly-once']);
  h.jobs[2] = job(2, {
    deletedRv: '1021',
    deletedAt: T0 + 2 * MIN + 30_000,
    terminalRv: undefined,
    terminalAt: undefined,
  });
  h.pods[2] = pod(2, { terminalRv: '1039', terminalAt: T0 + 3 * MIN + 5_000 });
  expect(checkSlots(h, settle)).toEqual([]);
});

/** Run 2 fails twice and succeeds on attempt 3 (backoffLimit 2): three Jobs, three Pods, three tokens. */
function retried(): History {
  const h = clean();
  h.singletonJobs[0]!.backoffLimit = 2;
  h.jobs[2] = job(2, { outcome: 'Failed' });
  h.jobs.splice(
    3,
    0,
    job(2, {
      name: 'nightly-2-a2',
      uid: 'job-2a2',
      attempt: 2,
      token: '1021',
      templateTokens: ['1021'],
      createdRv: '1026',
      createdAt: T0 + 2 * MIN + 3_000,
      outcome: 'Failed',
      terminalRv: '1027',
      terminalAt: T0 + 2 * MIN + 4_000,
    }),
  );
  h.jobs.splice(
    4,
    0,
    job(2, {
      name: 'nightly-2-a3',
      uid: 'job-2a3',
      attempt: 3,
      token: '1022',
      templateTokens: ['1022'],
      createdRv: '1028',
      createdAt: T0 + 2 * MIN + 6_000,
      outcome: 'Complete',
      terminalRv: '1029',
      terminalAt: T0 + 2 * MIN + 8_000,
    }),
  );
  // Tokens rise with every attempt; later runs above them.
  h.jobs = h.jobs.map((j) =>
    j.name === 'nightly-3' || j.name === 'nightly-4'
      ? { ...j, token: String(2000 + Number(j.token)), templateTokens: [String(2000 + Number(j.token))] }
      : j,
  );
  h.pods = [
    pod(0, { token: '100' }),
    pod(1, { token: '101' }),
    pod(2, { token: '102', terminalRv: '1005', phase: 'Failed' }),
    pod(2, {
      name: 'nightly-2a2-x',
      uid: 'pod-2a2',
      jobName: 'nightly-2-a2',
      jobUid: 'job-2a2',
      token: '1021',
      createdRv: '1026',
      createdAt: T0 + 2 * MIN + 3_100,
      terminalRv: '1027',
      phase: 'Failed',
    }),
    pod(2, {
      name: 'nightly-2a3-x',
      uid: 'pod-2a3',
      jobName: 'nightly-2-a3',
      jobUid: 'job-2a3',
      token: '1022',
      createdRv: '1028',
      createdAt: T0 + 2 * MIN + 6_100,
      terminalRv: '1030',
    }),
    pod(3, { token: '2103' }),
    pod(4, { token: '2104' }),
  ];
  return h;
}

test('retries: attempts of one run, each with its own higher token, are one run of the slot', () => {
  expect(checkHistory(retried(), settle)).toEqual([]);
});

test('two Pods sharing a token (a retry inside one Job), or a Pod token going down, are caught', () => {
  const h = retried();
  h.pods.push(
    pod(2, {
      name: 'nightly-2a3-y',
      uid: 'pod-2a3b',
      jobName: 'nightly-2-a3',
      jobUid: 'job-2a3',
      token: '1022',
      createdRv: '1030',
      createdAt: T0 + 2 * MIN + 7_000,
      terminalRv: '1030',
      phase: 'Failed',
    }),
  );
  expect(checkPodTokens(h).map((v) => v.message)).toEqual([
    expect.stringMatching(/Pods of SingletonJob ns\/nightly share token 1022: Pod nightly-2a3-x .* Pod nightly-2a3-y/),
  ]);
  h.pods.pop();
  h.pods[4] = { ...h.pods[4]!, token: '1000' };
  expect(checkPodTokens(h).map((v) => v.message)).toEqual([expect.stringContaining('went from token 1021 to 1000')]);
});

test('retries beyond the budget, and a retry of an attempt that did not fail, are caught', () => {
  const h = retried();
  h.singletonJobs[0]!.backoffLimit = 1;
  expect(checkRetries(h).map((v) => v.message)).toEqual([
    expect.stringMatching(
      /\(backoffLimit 1\) had 3 attempts: Job nightly-2 \(attempt 1.* → Job nightly-2-a2 .* → Job nightly-2-a3/,
    ),
  ]);
  const g = retried();
  g.jobs[3] = { ...g.jobs[3]!, outcome: 'Complete' };
  const v = checkRetries(g);
  expect(v.map((x) => x.message)).toEqual([
    expect.stringContaining('nightly-2-a3 of SingletonJob ns/nightly is attempt 3, but no failed attempt 2'),
  ]);
  // …and that orphan attempt is a second run of slot 2.
  expect(checkSlots(g, settle).map((x) => x.check)).toEqual(['slot-at-most-once']);
});

/** A manual-only object asked a, b, a: three runs. */
function requested(): History {
  const h = clean();
  h.singletonJobs.push({
    namespace: 'ns',
    name: 'adhoc',
    uid: 'uid-adhoc',
    schedule: '',
    createdAt: T0,
    requests: [
      { id: 'a', at: T0 + 1000 },
      { id: 'b', at: T0 + 20_000 },
      { id: 'a', at: T0 + 40_000 },
    ],
  });
  const manual = (i: number, id: string): JobRecord => ({
    ...job(i),
    name: `adhoc-m-${i}`,
    uid: `adhoc-${i}`,
    owner: 'adhoc',
    ownerUid: 'uid-adhoc',
    slot: undefined,
    requestId: id,
    createdRv: String(1001 + i),
    createdAt: T0 + 2000 + i * 20_000,
    terminalAt: T0 + 5000 + i * 20_000,
  });
  h.jobs.push(manual(0, 'a'), manual(1, 'b'), manual(2, 'a'));
  return h;
}

test('manual requests: a, b, a runs three times; a request run more often than it was asked is caught', () => {
  const h = requested();
  expect(checkRequests(h)).toEqual([]);
  expect(checkHistory(h, settle)).toEqual([]);
  // The repeated a (annotation unchanged, object only touched) must start nothing.
  h.singletonJobs[1]!.requests!.pop();
  const v = checkRequests(h);
  expect(v.map((x) => x.message)).toEqual([
    expect.stringMatching(
      /Manual request "a" of SingletonJob ns\/adhoc was asked 1 time\(s\) but ran 2 times: Job adhoc-m-0 .*; Job adhoc-m-2/,
    ),
  ]);
});

test('an object wedged at Ready=False/JobNameTaken is caught', () => {
  const h = clean();
  h.singletonJobs[0]!.conditions = [
    { type: 'Ready', status: 'True', reason: 'Scheduled', at: T0 },
    { type: 'Ready', status: 'False', reason: 'JobNameTaken', message: 'Job nightly-m-abc exists', at: T0 + 3 * MIN },
  ];
  expect(checkWedged(h).map((v) => v.message)).toEqual([
    expect.stringContaining('ns/nightly became Ready=False/JobNameTaken at +185.0s (Job nightly-m-abc exists)'),
  ]);
});

/** A second installation (Lease op2/singleton-operator, replica-x) next to the main one; replica-a renews every 2 s. */
function twoInstallations(): History {
  const h = clean();
  h.installations = [
    { name: 'main', lease: h.lease, replicas: h.replicas },
    { name: 'second', lease: { namespace: 'op2', name: 'singleton-operator' }, replicas: ['replica-x'] },
  ];
  for (let t = T0 - 2_000; t < T0 + 5 * MIN; t += 2_000) h.writes.push(write('replica-a', t));
  h.writes.push(write('replica-x', T0 + 30_000, { namespace: 'op2', verb: 'create', code: 201 }));
  return h;
}

test("a second installation acting on an object while the first one's Lease is alive is caught", () => {
  const h = twoInstallations();
  expect(checkInstallations(h)).toEqual([]);
  h.writes.push(
    write('replica-x', T0 + 2 * MIN + 30_000, { verb: 'delete', resource: 'jobs', namespace: 'ns', name: 'nightly-2' }),
  );
  const v = checkInstallations(h);
  expect(v.map((x) => x.message)).toEqual([
    expect.stringMatching(
      /Installation second \(replica replica-x\) acted on SingletonJob ns\/nightly \(delete jobs nightly-2\) .* main's Lease op\/singleton-operator stayed alive in between/,
    ),
  ]);
  // …and the main one acting again on what the second took over, while the second is alive.
  for (const t of [29_000, 31_000]) h.writes.push(write('replica-x', T0 + 2 * MIN + t, { namespace: 'op2' }));
  h.writes.push(
    write('replica-a', T0 + 2 * MIN + 32_000, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-3',
      code: 201,
    }),
  );
  expect(checkInstallations(h)).toHaveLength(2);
});

test('taking an object over from an installation whose Lease expired, or was deleted, is fine', () => {
  const h = twoInstallations();
  // replica-a goes silent from 2:00; replica-x acts at 2:10 (10 s after the last renewal, Lease 6 s).
  h.writes = h.writes.filter((w) => !(w.user === 'replica-a' && w.receivedUs >= (T0 + 2 * MIN) * 1000));
  h.writes.push(
    write('replica-x', T0 + 2 * MIN + 10_000, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-2',
      code: 201,
    }),
  );
  expect(checkInstallations(h)).toEqual([]);
  const g = twoInstallations();
  g.writes.push(
    write('replica-x', T0 + 2 * MIN + 30_000, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-2',
      code: 201,
    }),
  );
  g.writes = g.writes.filter((w) => !(w.user === 'replica-a' && w.receivedUs >= (T0 + 2 * MIN + 28_000) * 1000));
  g.installations![0]!.leaseDeletedAt = [T0 + 2 * MIN + 29_000];
  expect(checkInstallations(g)).toEqual([]);
  // Once taken over, the second keeps acting after the main one acquired its Lease again (the object is
  // claimed in status, so the main one leaves it alone); the main one acting on it again is caught.
  g.writes.push(write('replica-b', T0 + 2 * MIN + 40_000));
  for (let t = T0 + 2 * MIN + 41_000; t < T0 + 3 * MIN; t += 2_000) g.writes.push(write('replica-b', t));
  g.writes.push(
    write('replica-x', T0 + 2 * MIN + 50_000, { verb: 'delete', resource: 'jobs', namespace: 'ns', name: 'nightly-2' }),
  );
  for (let t = T0 + 2 * MIN + 31_000; t < T0 + 3 * MIN; t += 2_000)
    g.writes.push(write('replica-x', t, { namespace: 'op2' }));
  expect(checkInstallations(g)).toEqual([]);
  g.writes.push(
    write('replica-b', T0 + 2 * MIN + 55_000, {
      verb: 'delete',
      resource: 'pods',
      namespace: 'ns',
      name: 'nightly-2-abcde',
    }),
  );
  expect(checkInstallations(g).map((v) => v.message)).toEqual([
    expect.stringContaining(
      'Installation main (replica replica-b) acted on SingletonJob ns/nightly (delete pods nightly-2-abcde)',
    ),
  ]);
});

test("each installation's writes are judged against its own Lease", () => {
  const h = twoInstallations();
  // replica-x holds op2's Lease: its status write is not a deposed write of the main installation.
  h.writes.push(
    write('replica-x', T0 + 31_000, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
  // replica-y never held op2's Lease.
  h.installations![1]!.replicas.push('replica-y');
  h.writes.push(
    write('replica-y', T0 + 32_000, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
    }),
  );
  h.writes.push(
    write('replica-y', T0 + 20_000, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
    }),
  );
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([
    expect.stringContaining(
      'Replica replica-y of installation second wrote update singletonjobs/status ns/nightly (HTTP 200) at +25.0s although no replica had acquired the Lease op2/singleton-operator yet',
    ),
    expect.stringContaining(
      'Replica replica-y of installation second wrote update singletonjobs/status ns/nightly (HTTP 200) at +37.0s, after replica replica-x had taken the Lease op2/singleton-operator',
    ),
  ]);
});

test("a deposed leader's late create of a Job it never reserved is harmless only if the Job never ran and was deleted as a stray", () => {
  const h = takeover();
  const acquired = T0 + 2 * MIN + 10_000;
  h.jobs.push(
    job(1, {
      name: 'nightly-x',
      uid: 'job-late',
      createdAt: acquired + 8_000,
      started: false,
      terminalRv: undefined,
      terminalAt: undefined,
      deletedRv: '1040',
      deletedAt: acquired + 9_000,
    }),
  );
  h.writes.push(
    write('replica-a', acquired + 8_000, {
      verb: 'create',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-x',
      code: 201,
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
  const last = h.jobs[h.jobs.length - 1]!;
  delete last.deletedAt;
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([
    expect.stringContaining('create jobs ns/nightly-x (HTTP 201)'),
  ]);
});

test("a deposed leader's late unsuspend is harmless for the run it reserved before the takeover, caught otherwise", () => {
  const h = takeover();
  const acquired = T0 + 2 * MIN + 10_000;
  h.writes.push(
    write('replica-a', acquired + 4_000, {
      verb: 'patch',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-2',
      code: 200,
    }),
  );
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([
    expect.stringContaining('patch jobs ns/nightly-2 (HTTP 200)'),
  ]);
  h.writes.push(
    write('replica-a', T0 + 2 * MIN + 1_000, {
      verb: 'update',
      resource: 'singletonjobs',
      subresource: 'status',
      namespace: 'ns',
      name: 'nightly',
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
});

test('a re-created Job (same name, owner, token) that is let run, or never deleted, is caught', () => {
  const h = clean();
  const stray = job(2, {
    uid: 'job-2-copy',
    createdRv: '1023',
    createdAt: T0 + 2 * MIN + 1_500,
    started: false,
    terminalRv: undefined,
    terminalAt: undefined,
    deletedRv: '1024',
    deletedAt: T0 + 2 * MIN + 1_700,
  });
  h.jobs.push(stray);
  h.faults.push({
    kind: 'recreate-job',
    target: 'ns/nightly-2',
    detail: 're-created',
    startedAt: T0 + 2 * MIN + 1_000,
    healedAt: T0 + 2 * MIN + 2_000,
    recoveredAt: T0 + 2 * MIN + 2_500,
    strayJobs: [{ namespace: 'ns', name: 'nightly-2', uid: 'job-2-copy' }],
  });
  expect(checkStrayJobs(h)).toEqual([]);
  h.pods.push(pod(2, { name: 'nightly-2-copy', uid: 'pod-copy', jobUid: 'job-2-copy', createdRv: '1025' }));
  expect(checkStrayJobs(h).map((v) => v.message)).toEqual([
    expect.stringContaining('was let run (Pod nightly-2-copy)'),
  ]);
  h.pods.pop();
  delete stray.deletedAt;
  expect(checkStrayJobs(h).map((v) => v.message)).toEqual([expect.stringContaining('was never deleted as a stray')]);
});

test("an action's expectation that was not met, or met late, is caught", () => {
  const h = clean();
  h.faults.push({
    kind: 'second-installation',
    target: 'installation second',
    detail: 'killed',
    startedAt: T0,
    healedAt: T0 + 10_000,
    recoveredAt: T0 + 11_000,
    expectations: [
      { what: 'a new run of ns/nightly after installation second is gone', deadline: T0 + 40_000, metAt: T0 + 20_000 },
      { what: 'a new run of ns/other after installation second is gone', deadline: T0 + 40_000 },
      { what: 'a new run of ns/late after installation second is gone', deadline: T0 + 40_000, metAt: T0 + 50_000 },
    ],
  });
  expect(checkExpectations(h).map((v) => v.message)).toEqual([
    expect.stringContaining('ns/other after installation second is gone — expected by +45.0s, never happened'),
    expect.stringContaining('ns/late after installation second is gone — expected by +45.0s, happened only at +55.0s'),
  ]);
});

test("a deposed leader's late delete may remove what existed before the takeover, never an object created since", () => {
  const h = takeover();
  const acquired = T0 + 2 * MIN + 10_000;
  h.writes.push(
    write('replica-a', acquired + 2_000, {
      verb: 'delete',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-2',
      code: 200,
    }),
  );
  expect(checkDeposedWrites(h)).toEqual([]);
  // nightly-3 was created by the successor after it acquired: a late delete of it is caught.
  h.writes.push(
    write('replica-a', T0 + 3 * MIN + 1_000, {
      verb: 'delete',
      resource: 'jobs',
      namespace: 'ns',
      name: 'nightly-3',
      code: 200,
    }),
  );
  expect(checkDeposedWrites(h).map((v) => v.message)).toEqual([
    expect.stringContaining('delete jobs ns/nightly-3 (HTTP 200)'),
  ]);
});

test('a request of a replica refused with 403 is a forbidden violation (the chart lacks a permission)', () => {
  const h = clean();
  expect(checkForbidden(h)).toEqual([]);
  h.forbidden = [
    {
      user: 'replica-a',
      verb: 'list',
      resource: 'events',
      namespace: 'apps',
      code: 403,
      receivedUs: (T0 + 1500) * 1000,
      completedUs: (T0 + 1501) * 1000,
    },
  ];
  expect(checkForbidden(h).map((v) => [v.check, v.message])).toEqual([
    ['forbidden', expect.stringContaining("replica-a's list of events in apps with 403")],
  ]);
  // An API server that just restarted answers 403 until its RBAC caches sync: not the chart's fault.
  h.faults.push({
    kind: 'apiserver-restart',
    target: 'kube-apiserver',
    detail: 'SIGKILL',
    startedAt: T0 + 1000,
    healedAt: T0 + 1200,
    recoveredAt: T0 + 1400,
  });
  expect(checkForbidden(h)).toEqual([]);
});

test('a lower term or token accepted by the API server (a CRD without its CEL rules) is caught', () => {
  const h = clean();
  expect(checkStatusFences(h)).toEqual([]);
  const fences = h.singletonJobs[0]!.fences!;
  fences.push({ rv: '1021', at: T0 + 2 * MIN + 450, leaderTerm: 1001, currentToken: 102 });
  const [v, ...more] = checkStatusFences(h);
  expect(more).toEqual([]);
  expect(v?.check).toBe('status-fences');
  expect(v?.at).toBe(T0 + 2 * MIN + 450);
  expect(v?.message).toContain('status.leaderTerm went from 1005 (rv 1011) to 1001 (rv 1021)');
  fences.pop();
  fences.push({ rv: '1021', at: T0 + 2 * MIN + 450, leaderTerm: 1005 });
  expect(checkStatusFences(h).map((x) => x.message)).toEqual([
    expect.stringContaining('status.currentToken went from 101 (rv 1011) to absent (rv 1021)'),
  ]);
  expect(checkHistory(h, settle).map((x) => x.check)).toContain('status-fences');
});
