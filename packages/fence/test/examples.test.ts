// The fenced examples in manifests/examples/, run for real: each SingletonJob's
// container command runs here as a local process, with its ConfigMap's files,
// the environment the operator sets, and a real store. Needs psql and redis-cli
// (Debian's postgresql and redis-server packages).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { createClient } from 'redis';
import { parseAllDocuments } from 'yaml';
import { fenceLua, installPostgresFence } from '../src/index.ts';
import { findBinaries, startPostgres, startRedis, type PostgresServer, type RedisServer } from './stores.ts';

const bin = findBinaries();
const describeWithStore = typeof bin === 'string' ? describe.skip : describe;
if (typeof bin === 'string') console.warn(`example tests ${bin}`);

const examples = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../manifests/examples');

interface Container {
  command: string[];
  env?: Array<{ name: string; value?: string }>;
  volumeMounts?: Array<{ name: string; mountPath: string }>;
}
interface Example {
  configMaps: Map<string, Record<string, string>>;
  namespace: string;
  name: string;
  container: Container;
  volumes: Array<{ name: string; configMap: { name: string } }>;
}

function loadExample(file: string, namespace: string): Example {
  const docs = parseAllDocuments(readFileSync(path.join(examples, file), 'utf8')).map(
    (d) =>
      d.toJS() as {
        kind: string;
        metadata: { name: string };
        data?: Record<string, string>;
        spec?: {
          jobTemplate: { spec: { template: { spec: { containers: Container[]; volumes: Example['volumes'] } } } };
        };
      },
  );
  const sj = docs.find((d) => d.kind === 'SingletonJob')!;
  const pod = sj.spec!.jobTemplate.spec.template.spec;
  return {
    configMaps: new Map(docs.filter((d) => d.kind === 'ConfigMap').map((d) => [d.metadata.name, d.data!])),
    namespace,
    name: sj.metadata.name,
    container: pod.containers[0]!,
    volumes: pod.volumes,
  };
}

/** Runs the example's container command locally: its ConfigMaps as files, the operator's env, our store. */
function runContainer(
  example: Example,
  dir: string,
  storeEnv: Record<string, string>,
  run: { token: number; slot?: string },
) {
  let command = example.container.command.slice();
  for (const mount of example.container.volumeMounts ?? []) {
    const volume = example.volumes.find((v) => v.name === mount.name)!;
    const target = path.join(dir, mount.name);
    mkdirSync(target, { recursive: true });
    for (const [file, content] of Object.entries(example.configMaps.get(volume.configMap.name)!))
      writeFileSync(path.join(target, file), content);
    command = command.map((arg) => arg.replaceAll(`${mount.mountPath}/`, `${target}/`));
  }
  const plain = Object.fromEntries(
    (example.container.env ?? []).filter((e) => e.value !== undefined).map((e) => [e.name, e.value!]),
  );
  const b = bin as Exclude<typeof bin, string>;
  const result = spawnSync(command[0]!, command.slice(1), {
    encoding: 'utf8',
    env: {
      PATH: [b.pgBin, path.dirname(b.redisCli), process.env.PATH].join(path.delimiter),
      ...plain,
      ...storeEnv,
      SINGLETON_FENCING_TOKEN: String(run.token),
      SINGLETON_LEADER_TERM: String(run.token),
      SINGLETON_JOB_NAME: example.name,
      SINGLETON_JOB_NAMESPACE: example.namespace,
      SINGLETON_JOB_KEY: `${example.namespace}/${example.name}`,
      SINGLETON_RUN_NAME: `${example.name}-${run.token}`,
      SINGLETON_RUN_SLOT: run.slot ?? '',
      SINGLETON_RUN_REQUEST_ID: run.slot ? '' : 'manual-1',
      SINGLETON_ATTEMPT: '1',
    },
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(path.join(os.tmpdir(), 'fence-examples-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describeWithStore('manifests/examples/fenced-ledger-export.yaml on a real PostgreSQL', () => {
  let server: PostgresServer;
  let pool: pg.Pool;
  beforeAll(async () => {
    server = await startPostgres(bin as Exclude<typeof bin, string>);
    pool = new pg.Pool({ connectionString: server.url, max: 2 });
    await installPostgresFence(pool);
    await pool.query(`CREATE TABLE ledger_entries (booked_on date NOT NULL, amount_cents bigint NOT NULL);
      CREATE TABLE ledger_export (business_day date PRIMARY KEY, total_cents bigint NOT NULL, exported_by_token bigint NOT NULL);
      INSERT INTO ledger_entries VALUES (current_date - 1, 1250), (current_date - 1, 750), (current_date, 99999)`);
  }, 60_000);
  afterAll(async () => {
    await pool?.end();
    await server?.stop();
  });

  const exported = async () =>
    (
      await pool.query<{ total_cents: string; exported_by_token: string }>(
        'SELECT total_cents, exported_by_token FROM ledger_export',
      )
    ).rows;
  const fences = async () =>
    (
      await pool.query<{ job_key: string; token: string }>(
        'SELECT job_key, token FROM singleton_fence ORDER BY job_key',
      )
    ).rows;

  it('exports with its token, fenced by namespace/name; a lower token is refused (psql exits 3) and changes nothing; the same token may export again', async () => {
    const example = loadExample('fenced-ledger-export.yaml', 'finance');
    const env = { DATABASE_URL: server.url };
    const first = runContainer(example, dir, env, { token: 500 });
    expect(first).toMatchObject({ status: 0 });
    expect(await exported()).toEqual([{ total_cents: '2000', exported_by_token: '500' }]);
    expect(await fences()).toEqual([{ job_key: 'finance/ledger-export', token: '500' }]);

    const zombie = runContainer(example, dir, env, { token: 400 });
    expect(zombie.status).toBe(3);
    expect(zombie.stderr).toContain(
      'fenced out: token 400 for finance/ledger-export is below the highest token seen, 500',
    );
    expect(await exported()).toEqual([{ total_cents: '2000', exported_by_token: '500' }]);

    expect(runContainer(example, dir, env, { token: 500 }).status).toBe(0);
    // Another SingletonJob (here: the same name in another namespace) has its own fence; its tokens are not compared.
    expect(runContainer(loadExample('fenced-ledger-export.yaml', 'finance-eu'), dir, env, { token: 3 }).status).toBe(0);
    expect(await fences()).toEqual([
      { job_key: 'finance-eu/ledger-export', token: '3' },
      { job_key: 'finance/ledger-export', token: '500' },
    ]);
  });
});

describeWithStore('manifests/examples/fenced-redis-summary.yaml on a real Redis', () => {
  let server: RedisServer;
  let client: ReturnType<typeof createClient>;
  beforeAll(async () => {
    server = await startRedis(bin as Exclude<typeof bin, string>);
    client = createClient({ url: server.url });
    await client.connect();
  }, 60_000);
  afterAll(async () => {
    client?.destroy();
    await server?.stop();
  });

  it('ships packages/fence/redis/fence.lua verbatim', () => {
    expect(loadExample('fenced-redis-summary.yaml', 'shop').configMaps.get('daily-summary-scripts')!['fence.lua']).toBe(
      fenceLua,
    );
  });

  it('writes the summary with its token, fenced by namespace/name; a lower token is refused (exit 3) and changes nothing', async () => {
    const example = loadExample('fenced-redis-summary.yaml', 'shop');
    await client.set('orders:count:2026-11-30', '17');
    const env = { REDIS_URL: server.url };
    const slot = '2026-11-30T00:15:00Z';
    const first = runContainer(example, dir, env, { token: 500, slot });
    expect(first).toMatchObject({ status: 0, stdout: 'Wrote the summary of 2026-11-30 with token 500\n' });
    const summary = 'summary:{shop/daily-summary}:2026-11-30';
    expect(await client.hGetAll(summary)).toEqual({ orders: '17', run: 'daily-summary-500', token: '500' });
    expect(await client.get('singleton-fence:{shop/daily-summary}')).toBe('500');

    await client.set('orders:count:2026-11-30', '18');
    const zombie = runContainer(example, dir, env, { token: 400, slot });
    expect(zombie).toMatchObject({
      status: 3,
      stderr: 'Refused: token 400 is below 500, a newer run of shop/daily-summary has written\n',
    });
    expect(await client.hGetAll(summary)).toEqual({ orders: '17', run: 'daily-summary-500', token: '500' });
  });
});
