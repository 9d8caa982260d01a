// Real PostgreSQL and Redis servers for the tests: Debian's binaries, each on a
// free loopback port (and, when asked, one more local address, e.g. a real
// node's bridge gateway for Pods) with a throwaway data folder, stopped by PID.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import {
  appendFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  chownSync,
  closeSync,
} from 'node:fs';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { createClient } from 'redis';

export interface Binaries {
  /** Folder with initdb, postgres and psql. */
  pgBin: string;
  redisServer: string;
  redisCli: string;
}

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const file = path.join(dir, name);
    if (dir && existsSync(file)) return file;
  }
  return undefined;
}

/** PostgreSQL's server binaries: $PG_BINDIR, the PATH, or Debian's /usr/lib/postgresql/<newest>/bin. */
function findPgBin(): string | undefined {
  const candidates: string[] = [];
  if (process.env.PG_BINDIR) candidates.push(process.env.PG_BINDIR);
  const initdb = onPath('initdb');
  if (initdb) candidates.push(path.dirname(initdb));
  const debian = '/usr/lib/postgresql';
  if (existsSync(debian)) {
    const versions = readdirSync(debian)
      .filter((v) => /^\d+$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(debian, v, 'bin')));
  }
  return candidates.find((dir) => ['initdb', 'postgres', 'psql'].every((b) => existsSync(path.join(dir, b))));
}

/** The binaries, or a message saying which are missing and how to install them. */
export function findBinaries(): Binaries | string {
  const pgBin = findPgBin();
  const redisServer = onPath('redis-server');
  const redisCli = onPath('redis-cli');
  const missing = [
    !pgBin && 'PostgreSQL (initdb, postgres, psql)',
    !redisServer && 'redis-server',
    !redisCli && 'redis-cli',
  ].filter(Boolean);
  if (pgBin && redisServer && redisCli) return { pgBin, redisServer, redisCli };
  return `skipped: ${missing.join(', ')} not found; install them with: apt-get install -y postgresql redis-server`;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function eventually<T>(what: string, attempt: () => Promise<T>, log: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await attempt();
    } catch (error) {
      if (Date.now() > deadline) {
        const tail = existsSync(log) ? readFileSync(log, 'utf8').slice(-2000) : '(no log)';
        throw new Error(`${what} did not come up: ${(error as Error).message}\n--- ${log}\n${tail}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/** Sends each signal in turn, 5 s apart, until the process has exited; SIGKILL last. */
async function stopProcess(child: ChildProcess, ...signals: NodeJS.Signals[]): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const timers = [...signals, 'SIGKILL' as const].map((signal, i) => setTimeout(() => child.kill(signal), i * 5_000));
  await exited;
  timers.forEach(clearTimeout);
}

/**
 * Where a server listens besides loopback: one more local address (e.g. a real
 * node's bridge gateway, for Pods) and the clients' network allowed through it.
 */
export interface ListenOptions {
  also?: { address: string; clients: string };
}

export interface PostgresServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

/** Starts a throwaway PostgreSQL cluster (as the `postgres` user when we are root: the server refuses root). */
export async function startPostgres(bin: Binaries, listen: ListenOptions = {}): Promise<PostgresServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fence-pg-'));
  let ids: { uid: number; gid: number } | undefined;
  if (process.getuid?.() === 0) {
    ids = {
      uid: Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' })),
      gid: Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' })),
    };
    chownSync(dir, ids.uid, ids.gid);
  }
  const data = path.join(dir, 'data');
  const log = path.join(dir, 'postgres.log');
  execFileSync(
    path.join(bin.pgBin, 'initdb'),
    ['-D', data, '-A', 'trust', '-U', 'postgres', '-E', 'UTF8', '--locale=C', '--no-sync'],
    { ...ids, stdio: 'pipe', cwd: dir },
  );
  if (listen.also) appendFileSync(path.join(data, 'pg_hba.conf'), `host all all ${listen.also.clients} trust\n`);
  const port = await freePort();
  const out = openSync(log, 'a');
  if (ids) chownSync(log, ids.uid, ids.gid);
  const child = spawn(
    path.join(bin.pgBin, 'postgres'),
    [
      '-D',
      data,
      '-p',
      String(port),
      '-k',
      dir,
      '-c',
      `listen_addresses=${['127.0.0.1', ...(listen.also ? [listen.also.address] : [])].join(',')}`,
      '-c',
      'fsync=off',
      '-c',
      'synchronous_commit=off',
      '-c',
      'full_page_writes=off',
      '-c',
      'max_connections=200',
    ],
    { ...ids, cwd: dir, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  const url = `postgres://postgres@127.0.0.1:${port}/postgres`;
  try {
    await eventually(
      'PostgreSQL',
      async () => {
        if (child.exitCode !== null) throw new Error(`postgres exited with ${child.exitCode}`);
        const client = new pg.Client({ connectionString: url });
        await client.connect();
        await client.end();
      },
      log,
    );
  } catch (error) {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    pid: child.pid!,
    async stop() {
      // Smart shutdown first (lets clients that are closing say goodbye), then fast shutdown.
      await stopProcess(child, 'SIGTERM', 'SIGINT');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface RedisServer {
  url: string;
  port: number;
  pid: number;
  stop(): Promise<void>;
}

export async function startRedis(bin: Binaries, listen: ListenOptions = {}): Promise<RedisServer> {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'fence-redis-'));
  const log = path.join(dir, 'redis.log');
  const port = await freePort();
  const out = openSync(log, 'a');
  const child = spawn(
    bin.redisServer,
    [
      '--port',
      String(port),
      '--bind',
      '127.0.0.1',
      ...(listen.also ? [listen.also.address, '--protected-mode', 'no'] : []),
      '--save',
      '',
      '--appendonly',
      'no',
      '--dir',
      dir,
    ],
    { cwd: dir, stdio: ['ignore', out, out] },
  );
  closeSync(out);
  const url = `redis://127.0.0.1:${port}`;
  try {
    await eventually(
      'Redis',
      async () => {
        if (child.exitCode !== null) throw new Error(`redis-server exited with ${child.exitCode}`);
        const client = createClient({ url, socket: { reconnectStrategy: false } });
        client.on('error', () => {});
        await client.connect();
        try {
          if ((await client.ping()) !== 'PONG') throw new Error('no PONG');
        } finally {
          client.destroy();
        }
      },
      log,
    );
  } catch (error) {
    await stopProcess(child);
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    port,
    pid: child.pid!,
    async stop() {
      await stopProcess(child, 'SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
