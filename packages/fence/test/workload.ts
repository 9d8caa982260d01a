// A workload as the operator would run it, for the zombie tests: it reads its
// identity from the environment, says "ready", waits for its go file, then
// makes one fenced write and reports the outcome as a JSON line.
//   FENCE_STORE        postgres | redis
//   FENCE_STORE_URL    where the store listens
//   FENCE_GO_FILE      write only once this file exists
//   FENCE_HOLD_FILE    postgres only: after the write, keep the transaction open until this file exists
// Exit codes: 0 written, 3 fenced out, 1 anything else.
import { existsSync } from 'node:fs';
import pg from 'pg';
import { createClient } from 'redis';
import { FencedOutError, readRunIdentity, redisFencedWrite, withPostgresFence } from '../src/index.ts';

const print = (line: object) => process.stdout.write(`${JSON.stringify(line)}\n`);

async function waitFor(file: string | undefined): Promise<void> {
  while (file && !existsSync(file)) await new Promise((r) => setTimeout(r, 20));
}

async function main(): Promise<number> {
  const id = readRunIdentity();
  const output = `${id.runName}#${id.attempt}@${id.token}`;
  if (process.env.FENCE_STORE === 'postgres') {
    const client = new pg.Client({ connectionString: process.env.FENCE_STORE_URL });
    client.on('error', () => {}); // a connection the server cut while we were stopped is reported by the query
    await client.connect();
    print({ state: 'ready', pid: process.pid });
    await waitFor(process.env.FENCE_GO_FILE);
    try {
      await withPostgresFence(client, id, async (tx) => {
        await tx.query('INSERT INTO outputs (job_key, output, token) VALUES ($1, $2, $3)', [
          id.jobKey,
          output,
          id.token,
        ]);
        await tx.query(
          'INSERT INTO report (job_key, output, token) VALUES ($1, $2, $3) ON CONFLICT (job_key) DO UPDATE SET output = EXCLUDED.output, token = EXCLUDED.token',
          [id.jobKey, output, id.token],
        );
        if (process.env.FENCE_HOLD_FILE) {
          print({ state: 'in-transaction' });
          await waitFor(process.env.FENCE_HOLD_FILE);
        }
      });
    } finally {
      await client.end().catch(() => {});
    }
  } else {
    const client = createClient({ url: process.env.FENCE_STORE_URL });
    await client.connect();
    print({ state: 'ready', pid: process.pid });
    await waitFor(process.env.FENCE_GO_FILE);
    try {
      await redisFencedWrite(client, id, [
        ['HSET', `report:{${id.jobKey}}`, 'output', output, 'token', String(id.token)],
        ['RPUSH', `outputs:{${id.jobKey}}`, output],
      ]);
    } finally {
      client.destroy();
    }
  }
  print({ outcome: 'written', output });
  return 0;
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof FencedOutError) {
      print({ outcome: 'fenced', token: error.token, highest: error.highestToken });
      process.exit(3);
    }
    print({ outcome: 'error', name: (error as Error).name, message: (error as Error).message });
    process.exit(1);
  },
);
