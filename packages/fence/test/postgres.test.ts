// The PostgreSQL fence against a real server: claim and write in one
// transaction, refused writes leave nothing behind, and concurrent writers end
// with the highest token's write last.
import pg from 'pg';
import { FencedOutError, installPostgresFence, withPostgresFence } from '../src/index.ts';
import { findBinaries, startPostgres, type PostgresServer } from './stores.ts';

const bin = findBinaries();
const describeWithStore = typeof bin === 'string' ? describe.skip : describe;
if (typeof bin === 'string') console.warn(`PostgreSQL fence tests ${bin}`);

let server: PostgresServer;
let pool: pg.Pool;

beforeAll(async () => {
  if (typeof bin === 'string') return;
  server = await startPostgres(bin);
  pool = new pg.Pool({ connectionString: server.url, max: 20 });
  await installPostgresFence(pool);
  await installPostgresFence(pool); // idempotent, like a migration run twice
  await pool.query(
    'CREATE TABLE outputs (id bigserial PRIMARY KEY, job_key text NOT NULL, output text NOT NULL, token bigint NOT NULL)',
  );
}, 60_000);

afterAll(async () => {
  await pool?.end();
  await server?.stop();
});

const fence = async (key: string) =>
  (await pool.query<{ token: string }>('SELECT token FROM singleton_fence WHERE job_key = $1', [key])).rows[0]?.token;
const outputs = async (key: string) =>
  (
    await pool.query<{ output: string; token: string }>(
      'SELECT output, token FROM outputs WHERE job_key = $1 ORDER BY id',
      [key],
    )
  ).rows;

function write(key: string, token: number, output = `t${token}`, db: pg.Pool | pg.ClientBase = pool) {
  return withPostgresFence(db, { jobKey: key, token }, async (tx) => {
    await tx.query('INSERT INTO outputs (job_key, output, token) VALUES ($1, $2, $3)', [key, output, token]);
    return output;
  });
}

describeWithStore('PostgreSQL fence', () => {
  it('accepts the first token, the same token again (>=), and a higher one; refuses a lower one with the highest seen, writing nothing', async () => {
    const key = 'payroll/nightly-payroll';
    expect(await write(key, 100, 'run-1')).toBe('run-1');
    expect(await write(key, 100, 'run-1 second batch')).toBe('run-1 second batch');
    await write(key, 250, 'run-2');
    let ran = false;
    const refused = await withPostgresFence(pool, { jobKey: key, token: 180 }, async () => {
      ran = true;
    }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FencedOutError);
    expect(refused).toMatchObject({ key, token: 180, highestToken: 250 });
    expect((refused as Error).message).toBe(
      'fenced out: token 180 for payroll/nightly-payroll is below the highest token the store has seen, 250',
    );
    expect(ran).toBe(false);
    expect(await fence(key)).toBe('250');
    expect((await outputs(key)).map((r) => r.output)).toEqual(['run-1', 'run-1 second batch', 'run-2']);
  });

  it('rolls back the write and the raised fence when the caller’s work fails', async () => {
    const key = 'shop/orders-backfill';
    await write(key, 10);
    const failed = await withPostgresFence(pool, { jobKey: key, token: 20 }, async (tx) => {
      await tx.query('INSERT INTO outputs (job_key, output, token) VALUES ($1, $2, $3)', [key, 'half done', 20]);
      throw new Error('disk full');
    }).catch((e: unknown) => e);
    expect((failed as Error).message).toBe('disk full');
    expect(await fence(key)).toBe('10');
    expect((await outputs(key)).map((r) => r.output)).toEqual(['t10']);
    expect(pool.totalCount - pool.idleCount).toBe(0); // the client went back to the pool
  });

  it('works on a connected Client, which stays usable after a refusal', async () => {
    const client = new pg.Client({ connectionString: server.url });
    await client.connect();
    try {
      const key = 'finance/ledger-export';
      await write(key, 7, 'a', client);
      await expect(write(key, 6, 'b', client)).rejects.toBeInstanceOf(FencedOutError);
      await write(key, 8, 'c', client);
      expect((await client.query('SELECT 1 AS one')).rows).toEqual([{ one: 1 }]);
      expect((await outputs(key)).map((r) => r.output)).toEqual(['a', 'c']);
    } finally {
      await client.end();
    }
  });

  it('keeps one fence per SingletonJob key: tokens of different keys are not compared', async () => {
    await write('team-a/report', 900);
    await write('team-b/report', 3);
    await expect(write('team-a/report', 899)).rejects.toMatchObject({ highestToken: 900 });
    expect(await fence('team-b/report')).toBe('3');
  });

  it('refuses a claim without a key or with a token outside 1 ≤ token < 2^53 before touching the store', async () => {
    for (const token of [0, -1, 1.5, 2 ** 53, Number.NaN]) {
      await expect(write('x/y', token)).rejects.toThrow(TypeError);
    }
    await expect(write('', 1)).rejects.toThrow(TypeError);
    expect(await fence('x/y')).toBeUndefined();
  });

  it('60 concurrent writers with shuffled tokens: the fence ends at the maximum and no lower token commits after a higher one', async () => {
    const key = 'batch/concurrent';
    const tokens = Array.from({ length: 60 }, (_, i) => 1_000 + i * 7);
    for (let i = tokens.length - 1; i > 0; i--) {
      const j = Math.floor(Math.random() * (i + 1));
      [tokens[i], tokens[j]] = [tokens[j]!, tokens[i]!];
    }
    const results = await Promise.allSettled(tokens.map((t) => write(key, t)));
    const max = Math.max(...tokens);
    expect(await fence(key)).toBe(String(max));
    const committed = (await outputs(key)).map((r) => Number(r.token));
    // The claim locks the fence row until COMMIT, so ids are handed out in commit order.
    for (let i = 1; i < committed.length; i++) expect(committed[i]!).toBeGreaterThan(committed[i - 1]!);
    expect(committed.at(-1)).toBe(max);
    results.forEach((r, i) => {
      if (r.status === 'fulfilled') return expect(committed).toContain(tokens[i]);
      expect(r.reason).toBeInstanceOf(FencedOutError);
      expect((r.reason as FencedOutError).highestToken).toBeGreaterThan(tokens[i]!);
      expect(committed).not.toContain(tokens[i]);
    });
    const accepted = results.filter((r) => r.status === 'fulfilled').length;
    expect(accepted).toBe(committed.length);
    console.info(`PostgreSQL: 60 concurrent writers, ${accepted} accepted, ${60 - accepted} fenced out`);
  });

  it('takes an isolation level: under SERIALIZABLE the fence still refuses a lower token, and an unknown level is refused', async () => {
    const key = 'iso/serializable';
    const serializable = (token: number) =>
      withPostgresFence(
        pool,
        { jobKey: key, token },
        async (tx) =>
          tx.query('INSERT INTO outputs (job_key, output, token) VALUES ($1, $2, $3)', [key, `t${token}`, token]),
        {
          isolationLevel: 'SERIALIZABLE',
        },
      );
    await serializable(9);
    await expect(serializable(8)).rejects.toMatchObject({ highestToken: 9 });
    await expect(
      withPostgresFence(pool, { jobKey: key, token: 10 }, async () => {}, {
        isolationLevel: 'READ UNCOMMITTED; DROP TABLE outputs' as never,
      }),
    ).rejects.toThrow(/unknown isolation level/);
    expect((await outputs(key)).map((r) => r.output)).toEqual(['t9']);
  });

  it('the bare claim statement from the README (no function) returns no row when refused', async () => {
    const claim = `INSERT INTO singleton_fence AS f (job_key, token) VALUES ($1, $2)
      ON CONFLICT (job_key) DO UPDATE SET token = EXCLUDED.token, updated_at = now()
      WHERE f.token <= EXCLUDED.token
      RETURNING f.token`;
    expect((await pool.query(claim, ['bare/sql', 5])).rows).toEqual([{ token: '5' }]);
    expect((await pool.query(claim, ['bare/sql', 5])).rows).toEqual([{ token: '5' }]);
    expect((await pool.query(claim, ['bare/sql', 4])).rows).toEqual([]);
  });
});
