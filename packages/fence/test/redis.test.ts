// The Redis fence against a real server: the Lua script compares, writes and
// raises the fence atomically; a refused write leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { createClient } from 'redis';
import { FencedOutError, fenceLua, redisFenceKey, redisFencedWrite } from '../src/index.ts';
import { findBinaries, startRedis, type RedisServer } from './stores.ts';

const bin = findBinaries();
const describeWithStore = typeof bin === 'string' ? describe.skip : describe;
if (typeof bin === 'string') console.warn(`Redis fence tests ${bin}`);

let server: RedisServer;
let client: ReturnType<typeof createClient>;

beforeAll(async () => {
  if (typeof bin === 'string') return;
  server = await startRedis(bin);
  client = createClient({ url: server.url });
  await client.connect();
}, 60_000);

afterAll(async () => {
  client?.destroy();
  await server?.stop();
});

const write = (key: string, token: number, value = `t${token}`) =>
  redisFencedWrite(client, { jobKey: key, token }, [
    ['SET', `last:{${key}}`, value],
    ['RPUSH', `log:{${key}}`, value],
  ]);
const log = (key: string) => client.lRange(`log:{${key}}`, 0, -1);

describeWithStore('Redis fence', () => {
  it('accepts the first token, the same token again (>=), and a higher one; refuses a lower one with the highest seen, writing nothing', async () => {
    const key = 'payroll/nightly-payroll';
    await client.scriptFlush(); // the first call finds no cached script (NOSCRIPT) and sends it
    await write(key, 100, 'run-1');
    await write(key, 100, 'run-1 again');
    await write(key, 250, 'run-2');
    const refused = await write(key, 180, 'zombie').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(FencedOutError);
    expect(refused).toMatchObject({ key, token: 180, highestToken: 250 });
    expect(await client.get(redisFenceKey(key))).toBe('250');
    expect(await client.get(`last:{${key}}`)).toBe('run-2');
    expect(await log(key)).toEqual(['run-1', 'run-1 again', 'run-2']);
  });

  it('applies several commands with their arguments (HSET, EXPIRE) and takes a fence key of the caller’s choosing', async () => {
    const claim = { jobKey: 'shop/orders-backfill', token: 42 };
    await redisFencedWrite(
      client,
      claim,
      [
        ['HSET', 'report', 'rows', '5000', 'by', 'run-7'],
        ['EXPIRE', 'report', '3600'],
        ['DEL', 'scratch'],
      ],
      { fenceKey: 'fence:orders' },
    );
    expect(await client.hGetAll('report')).toEqual({ rows: '5000', by: 'run-7' });
    expect(await client.ttl('report')).toBeGreaterThan(3000);
    expect(await client.get('fence:orders')).toBe('42');
    await expect(
      redisFencedWrite(client, { ...claim, token: 41 }, [['HSET', 'report', 'rows', '0']], {
        fenceKey: 'fence:orders',
      }),
    ).rejects.toMatchObject({ highestToken: 42 });
    await expect(
      redisFencedWrite(client, claim, [['SET', 'fence:orders', '1']], { fenceKey: 'fence:orders' }),
    ).rejects.toThrow(/must not touch the fence key/);
  });

  it('keeps one fence per SingletonJob key: tokens of different keys are not compared', async () => {
    await write('team-a/report', 900);
    await write('team-b/report', 3);
    await expect(write('team-a/report', 899)).rejects.toMatchObject({ highestToken: 900 });
    expect(await client.get(redisFenceKey('team-b/report'))).toBe('3');
  });

  it('the script refuses malformed calls before writing anything', async () => {
    const run = (args: string[]) =>
      client.eval(fenceLua, { keys: ['f', 'k'], arguments: args }).catch((e: Error) => e.message);
    expect(await run(['9007199254740992', '0'])).toMatch(/token 9007199254740992 is not an integer 1 <= token < 2\^53/);
    expect(await run(['0', '0'])).toMatch(/is not an integer/);
    expect(await run(['5', '1', 'SET', '1', '1', 'x'])).toMatch(/must name a key in KEYS\[2\.\.\]/);
    expect(await run(['5', '1', 'SET', '2', '2', 'x'])).toMatch(/fewer than 2 arguments/);
    expect(await run(['5', '1', 'SET', '2', '1', 'x', 'extra'])).toMatch(/left over/);
    expect(await client.exists(['f', 'k'])).toBe(0);
    await expect(redisFencedWrite(client, { jobKey: 'x/y', token: 2 ** 53 }, [])).rejects.toThrow(TypeError);
  });

  it('is plain EVAL for other languages: redis-cli EVAL gets APPLIED or FENCED', () => {
    if (typeof bin === 'string') return;
    const cli = (token: string) =>
      execFileSync(
        bin.redisCli,
        [
          '-u',
          server.url,
          'EVAL',
          fenceLua,
          '2',
          'singleton-fence:{cli/job}',
          'out:{cli/job}',
          token,
          '1',
          'SET',
          '2',
          '1',
          `by-${token}`,
        ],
        { encoding: 'utf8' },
      )
        .trim()
        .split('\n');
    expect(cli('7')).toEqual(['APPLIED', '7']);
    expect(cli('6')).toEqual(['FENCED', '7']);
  });

  it('60 concurrent writers on 6 connections with shuffled tokens: the fence ends at the maximum and no lower token writes after a higher one', async () => {
    const key = 'batch/concurrent';
    const clients = await Promise.all(Array.from({ length: 6 }, () => createClient({ url: server.url }).connect()));
    try {
      const tokens = Array.from({ length: 60 }, (_, i) => 1_000 + i * 7);
      for (let i = tokens.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [tokens[i], tokens[j]] = [tokens[j]!, tokens[i]!];
      }
      const results = await Promise.allSettled(
        tokens.map((t, i) =>
          redisFencedWrite(clients[i % clients.length]!, { jobKey: key, token: t }, [
            ['RPUSH', `log:{${key}}`, String(t)],
          ]),
        ),
      );
      const max = Math.max(...tokens);
      expect(await client.get(redisFenceKey(key))).toBe(String(max));
      const written = (await log(key)).map(Number);
      for (let i = 1; i < written.length; i++) expect(written[i]!).toBeGreaterThan(written[i - 1]!);
      expect(written.at(-1)).toBe(max);
      results.forEach((r, i) => {
        if (r.status === 'fulfilled') return expect(written).toContain(tokens[i]);
        expect(r.reason).toBeInstanceOf(FencedOutError);
        expect((r.reason as FencedOutError).highestToken).toBeGreaterThan(tokens[i]!);
        expect(written).not.toContain(tokens[i]);
      });
      console.info(`Redis: 60 concurrent writers, ${written.length} accepted, ${60 - written.length} fenced out`);
    } finally {
      clients.forEach((c) => c.destroy());
    }
  });
});
