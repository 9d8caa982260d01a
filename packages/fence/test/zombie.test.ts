// The zombie run, end to end with local processes: two workloads started with
// the environment the operator gives a run's Pods. The older one is paused
// (SIGSTOP) after it has started, the newer one writes, the older one resumes:
// the store refuses its write and holds only the newer one's. Also for a
// superseded retry attempt, and (PostgreSQL) for a zombie paused inside its
// open transaction.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createClient } from 'redis';
import { findBinaries, startPostgres, startRedis, type PostgresServer, type RedisServer } from './stores.ts';

const bin = findBinaries();
const describeWithStores = typeof bin === 'string' ? describe.skip : describe;
if (typeof bin === 'string') console.warn(`zombie tests ${bin}`);

const workloadScript = path.join(path.dirname(fileURLToPath(import.meta.url)), 'workload.ts');
const namespace = 'finance';
const name = 'ledger-export';
const jobKey = `${namespace}/${name}`;

let dir: string;
let postgres: PostgresServer;
let redis: RedisServer;
let pool: pg.Pool;
let redisClient: ReturnType<typeof createClient>;
const children: ChildProcess[] = [];

beforeAll(async () => {
  if (typeof bin === 'string') return;
  dir = mkdtempSync(path.join(os.tmpdir(), 'fence-zombie-'));
  [postgres, redis] = await Promise.all([startPostgres(bin), startRedis(bin)]);
  pool = new pg.Pool({ connectionString: postgres.url, max: 4 });
  await pool.query((await import('../src/index.ts')).fenceSql);
  await pool.query(
    'CREATE TABLE outputs (id bigserial PRIMARY KEY, job_key text NOT NULL, output text NOT NULL, token bigint NOT NULL)',
  );
  await pool.query('CREATE TABLE report (job_key text PRIMARY KEY, output text NOT NULL, token bigint NOT NULL)');
  redisClient = createClient({ url: redis.url });
  await redisClient.connect();
}, 60_000);

afterAll(async () => {
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
  }
  await pool?.end();
  redisClient?.destroy();
  await Promise.all([postgres?.stop(), redis?.stop()]);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

interface Run {
  token: number;
  term: number;
  runName: string;
  attempt: number;
}

/** The environment the operator gives every container of a run (see src/controller/rules/jobs.ts). */
function operatorEnv(run: Run, slot = ''): Record<string, string> {
  return {
    SINGLETON_FENCING_TOKEN: String(run.token),
    SINGLETON_LEADER_TERM: String(run.term),
    SINGLETON_JOB_NAME: name,
    SINGLETON_JOB_NAMESPACE: namespace,
    SINGLETON_JOB_KEY: jobKey,
    SINGLETON_RUN_NAME: run.runName,
    SINGLETON_RUN_SLOT: slot,
    SINGLETON_RUN_REQUEST_ID: slot ? '' : 'export-1',
    SINGLETON_ATTEMPT: String(run.attempt),
  };
}

interface Workload {
  child: ChildProcess;
  /** Resolves with the first JSON line the workload printed that has `key`. */
  said(key: 'state' | 'outcome', value?: string): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

function startWorkload(store: 'postgres' | 'redis', env: Record<string, string>): Workload {
  const child = spawn(process.execPath, [workloadScript], {
    env: {
      PATH: process.env.PATH ?? '',
      FENCE_STORE: store,
      FENCE_STORE_URL: store === 'postgres' ? postgres.url : redis.url,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  const lines: Record<string, unknown>[] = [];
  const waiters: Array<() => void> = [];
  let buffer = '';
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout!.on('data', (d: Buffer) => {
    buffer += d.toString();
    let nl: number;
    while ((nl = buffer.indexOf('\n')) >= 0) {
      lines.push(JSON.parse(buffer.slice(0, nl)) as Record<string, unknown>);
      buffer = buffer.slice(nl + 1);
      waiters.splice(0).forEach((w) => w());
    }
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  // 'close' comes after the process exited AND its stdout and stderr ended: only then is every line it printed read.
  // ('exit' can come first: under load a workload's last line, e.g. outcome=fenced, was still unread then.)
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  return {
    child,
    exited,
    said: (key, value) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const line = lines.find((l) => key in l && (value === undefined || l[key] === value));
          if (line) return resolve(line);
          waiters.push(check);
        };
        void closed.then((code) =>
          setImmediate(() =>
            reject(
              new Error(
                `workload exited (${code}) before saying ${key}=${value}: ${JSON.stringify(lines)} ${stderr.slice(-1500)}`,
              ),
            ),
          ),
        );
        check();
      }),
  };
}

/** The process state letter from /proc: T = stopped. */
const processState = (pid: number) => readFileSync(`/proc/${pid}/stat`, 'utf8').replace(/^.*\) /s, '')[0];

/** SIGSTOP, then wait until the kernel shows the process stopped (delivery is asynchronous). */
async function pause(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + 5_000;
  while (processState(pid) !== 'T') {
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

let seq = 0;
const file = (what: string) => path.join(dir, `${what}-${++seq}`);

async function storeState(store: 'postgres' | 'redis') {
  if (store === 'postgres') {
    const outputs = (
      await pool.query<{ output: string }>('SELECT output FROM outputs WHERE job_key = $1 ORDER BY id', [jobKey])
    ).rows.map((r) => r.output);
    const report = (await pool.query<{ output: string }>('SELECT output FROM report WHERE job_key = $1', [jobKey]))
      .rows[0]?.output;
    const fence = (
      await pool.query<{ token: string }>('SELECT token FROM singleton_fence WHERE job_key = $1', [jobKey])
    ).rows[0]?.token;
    return { outputs, report, fence: Number(fence) };
  }
  return {
    outputs: await redisClient.lRange(`outputs:{${jobKey}}`, 0, -1),
    report: (await redisClient.hGet(`report:{${jobKey}}`, 'output')) ?? undefined,
    fence: Number(await redisClient.get(`singleton-fence:{${jobKey}}`)),
  };
}

async function clear(store: 'postgres' | 'redis') {
  if (store === 'postgres') await pool.query('TRUNCATE outputs, report, singleton_fence');
  else await redisClient.flushAll();
}

/**
 * The older workload starts and pauses before its write (SIGSTOP while it waits
 * for its go file); the newer one writes; the older one resumes and is refused.
 */
async function zombieScenario(
  store: 'postgres' | 'redis',
  older: Record<string, string>,
  newer: Record<string, string>,
) {
  await clear(store);
  const goOld = file('go');
  const zombie = startWorkload(store, { ...older, FENCE_GO_FILE: goOld });
  await zombie.said('state', 'ready');
  await pause(zombie.child.pid!);
  writeFileSync(goOld, ''); // its go signal arrives while it is paused

  const goNew = file('go');
  writeFileSync(goNew, '');
  const successor = startWorkload(store, { ...newer, FENCE_GO_FILE: goNew });
  expect(await successor.said('outcome')).toMatchObject({ outcome: 'written' });
  expect(await successor.exited).toBe(0);
  expect(processState(zombie.child.pid!)).toBe('T'); // still paused all along

  process.kill(zombie.child.pid!, 'SIGCONT');
  const refused = await zombie.said('outcome');
  expect(await zombie.exited).toBe(3);
  return refused;
}

const stores = ['postgres', 'redis'] as const;

describeWithStores.each(stores)('zombie workloads against %s', (store) => {
  it('run N (token t) paused before its write, run N+1 (token t′ > t) writes, run N resumes: refused, the store holds only N+1’s write', async () => {
    const runN: Run = { token: 1_000, term: 990, runName: 'ledger-export-29384720', attempt: 1 };
    const runN1: Run = { token: 1_517, term: 1_517, runName: 'ledger-export-29384780', attempt: 1 };
    const refused = await zombieScenario(
      store,
      operatorEnv(runN, '2026-11-30T01:30:00Z'),
      operatorEnv(runN1, '2026-11-30T02:30:00Z'),
    );
    expect(refused).toEqual({ outcome: 'fenced', token: 1_000, highest: 1_517 });
    expect(await storeState(store)).toEqual({
      outputs: ['ledger-export-29384780#1@1517'],
      report: 'ledger-export-29384780#1@1517',
      fence: 1_517,
    });
  });

  it('a retry: attempt 1 (token t) paused, attempt 2 of the same run (token t2 > t) writes, attempt 1’s late write is refused', async () => {
    const attempt1: Run = { token: 2_000, term: 1_990, runName: 'ledger-export-export-1', attempt: 1 };
    const attempt2: Run = { token: 2_001, term: 1_990, runName: 'ledger-export-export-1', attempt: 2 };
    // Attempt 2 also has its annotations mounted with the downward API, as a Pod can.
    const annotations = file('annotations');
    writeFileSync(
      annotations,
      [
        'singleton.dev/attempt="2"',
        'singleton.dev/fencing-token="2001"',
        'singleton.dev/leader-term="1990"',
        'singleton.dev/singletonjob="ledger-export"',
      ].join('\n'),
    );
    const refused = await zombieScenario(store, operatorEnv(attempt1), {
      ...operatorEnv(attempt2),
      SINGLETON_PODINFO_ANNOTATIONS: annotations,
    });
    expect(refused).toEqual({ outcome: 'fenced', token: 2_000, highest: 2_001 });
    expect(await storeState(store)).toEqual({
      outputs: ['ledger-export-export-1#2@2001'],
      report: 'ledger-export-export-1#2@2001',
      fence: 2_001,
    });
  });

  it('a workload without its token writes nothing and names the variable', async () => {
    await clear(store);
    const env = operatorEnv({ token: 1, term: 1, runName: 'r', attempt: 1 });
    delete env.SINGLETON_FENCING_TOKEN;
    const workload = startWorkload(store, env);
    expect(await workload.said('outcome')).toEqual({
      outcome: 'error',
      name: 'IdentityError',
      message: 'SINGLETON_FENCING_TOKEN is missing: it is not set',
    });
    expect(await workload.exited).toBe(1);
    expect((await storeState(store)).outputs).toEqual([]);
  });
});

describeWithStores('a PostgreSQL zombie paused inside its open transaction', () => {
  it('holds the fence row until idle_in_transaction_session_timeout cuts it off; then the successor writes, and the zombie’s write never commits', async () => {
    await clear('postgres');
    const url = `${postgres.url}?options=${encodeURIComponent('-c idle_in_transaction_session_timeout=1000')}`;
    const hold = file('hold');
    const zombie = startWorkload('postgres', {
      ...operatorEnv({ token: 3_000, term: 3_000, runName: 'ledger-export-a', attempt: 1 }),
      FENCE_HOLD_FILE: hold,
      FENCE_STORE_URL: url,
    });
    await zombie.said('state', 'in-transaction');
    await pause(zombie.child.pid!);
    writeFileSync(hold, '');
    const started = Date.now();
    const successor = startWorkload(
      'postgres',
      operatorEnv({ token: 3_100, term: 3_100, runName: 'ledger-export-b', attempt: 1 }),
    );
    expect(await successor.said('outcome')).toMatchObject({ outcome: 'written' });
    console.info(`the successor waited ${Date.now() - started} ms for the paused zombie's fence row lock`);
    process.kill(zombie.child.pid!, 'SIGCONT');
    const cutOff = await zombie.said('outcome');
    console.info(`the resumed zombie got: ${String(cutOff.message)}`);
    expect(cutOff).toMatchObject({ outcome: 'error' });
    expect(cutOff.message).toMatch(/idle-in-transaction timeout|Connection terminated/);
    expect(await zombie.exited).toBe(1);
    expect(await storeState('postgres')).toEqual({
      outputs: ['ledger-export-b#1@3100'],
      report: 'ledger-export-b#1@3100',
      fence: 3_100,
    });
  });
});
