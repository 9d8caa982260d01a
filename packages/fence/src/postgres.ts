// The PostgreSQL fence: claim and caller's write in one transaction. The SQL
// lives in ../sql/fence.sql, shared with workloads in other languages.
import { readFileSync } from 'node:fs';
import type { Pool, PoolClient, ClientBase } from 'pg';
import { FencedOutError } from './errors.ts';
import type { RunIdentity } from './identity.ts';
import { checkClaim } from './claim.ts';

/** The SQL that creates the fence table and the claim function (idempotent). */
export const fenceSql = readFileSync(new URL('../sql/fence.sql', import.meta.url), 'utf8');

/** SQLSTATE that singleton_fence_claim raises when a higher token has written. */
export const FENCED_OUT_SQLSTATE = 'SF409';

const ISOLATION_LEVELS = ['READ COMMITTED', 'REPEATABLE READ', 'SERIALIZABLE'] as const;
export type IsolationLevel = (typeof ISOLATION_LEVELS)[number];

/** Creates the fence table and function if missing. Run once, like a migration (not concurrently). */
export async function installPostgresFence(db: Pool | ClientBase): Promise<void> {
  await db.query(fenceSql);
}

/**
 * Runs `work` in one transaction that first claims the fence for
 * `claim.jobKey` with `claim.token`, then commits. If a higher token has
 * written, nothing of `work` runs, the transaction is rolled back and
 * FencedOutError is thrown. If `work` throws, the transaction (including the
 * raised fence) is rolled back and the error rethrown.
 *
 * `db` is a Pool (a client is checked out for the transaction) or a connected
 * Client/PoolClient that is not inside a transaction. `work` must use the
 * client it is given.
 */
export async function withPostgresFence<T>(
  db: Pool | ClientBase,
  claim: Pick<RunIdentity, 'jobKey' | 'token'>,
  work: (client: ClientBase) => Promise<T>,
  options: { isolationLevel?: IsolationLevel } = {},
): Promise<T> {
  checkClaim(claim);
  const isolation = options.isolationLevel ?? 'READ COMMITTED';
  if (!ISOLATION_LEVELS.includes(isolation))
    throw new TypeError(`unknown isolation level ${JSON.stringify(isolation)}`);
  const pooled = isPool(db);
  const client: ClientBase = pooled ? await db.connect() : db;
  let broken: Error | undefined;
  try {
    await client.query(`BEGIN ISOLATION LEVEL ${isolation}`).catch((error: Error) => {
      broken = error;
      throw error;
    });
    try {
      await client.query('SELECT singleton_fence_claim($1, $2)', [claim.jobKey, claim.token]);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch((rollbackError: Error) => {
        broken = rollbackError; // the connection is unusable: a pool must not hand it out again
      });
      throw fencedOut(error, claim) ?? error;
    }
  } finally {
    if (pooled) (client as PoolClient).release(broken);
  }
}

function isPool(db: Pool | ClientBase): db is Pool {
  return typeof (db as Pool).connect === 'function' && 'totalCount' in db;
}

function fencedOut(error: unknown, claim: Pick<RunIdentity, 'jobKey' | 'token'>): FencedOutError | undefined {
  const e = error as { code?: string; detail?: string };
  if (e?.code !== FENCED_OUT_SQLSTATE) return undefined;
  return new FencedOutError(claim.jobKey, claim.token, Number(e.detail));
}
