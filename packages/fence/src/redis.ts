// The Redis fence: one Lua script compares the token and applies the writes
// atomically. The script lives in ../redis/fence.lua, shared with workloads in
// other languages.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { FencedOutError } from './errors.ts';
import type { RunIdentity } from './identity.ts';
import { checkClaim } from './claim.ts';

/** The Lua script (see the comment at its top for its KEYS, ARGV and replies). */
export const fenceLua = readFileSync(new URL('../redis/fence.lua', import.meta.url), 'utf8');
const fenceSha1 = createHash('sha1').update(fenceLua).digest('hex');

/**
 * What the script needs from a Redis client: node-redis (`redis` ≥ 4, its
 * clients, pools and cluster clients) fits as it is.
 */
export interface RedisScriptRunner {
  evalSha(sha1: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
  eval(script: string, options: { keys: string[]; arguments: string[] }): Promise<unknown>;
}

/** One write: a command, its one key, then its other arguments — e.g. `['HSET', 'report:{ns/name}', 'total', '42']`. */
export type RedisWrite = readonly [command: string, key: string, ...args: string[]];

/** The fence key of a SingletonJob key; its hash tag keeps it in one cluster slot with keys tagged `{namespace/name}`. */
export function redisFenceKey(jobKey: string): string {
  return `singleton-fence:{${jobKey}}`;
}

/**
 * Applies `writes` and raises the fence of `claim.jobKey` to `claim.token`,
 * atomically, if no higher token has written; otherwise writes nothing and
 * throws FencedOutError. `options.fenceKey` defaults to redisFenceKey(jobKey).
 */
export async function redisFencedWrite(
  client: RedisScriptRunner,
  claim: Pick<RunIdentity, 'jobKey' | 'token'>,
  writes: readonly RedisWrite[],
  options: { fenceKey?: string } = {},
): Promise<void> {
  checkClaim(claim);
  const fenceKey = options.fenceKey ?? redisFenceKey(claim.jobKey);
  const keys = [fenceKey];
  const args = [String(claim.token), String(writes.length)];
  for (const [command, key, ...rest] of writes) {
    if (key === fenceKey) throw new TypeError(`a fenced write must not touch the fence key ${fenceKey}`);
    let index = keys.indexOf(key);
    if (index < 0) index = keys.push(key) - 1;
    args.push(command, String(index + 1), String(rest.length), ...rest);
  }
  const call = { keys, arguments: args };
  let reply: unknown;
  try {
    reply = await client.evalSha(fenceSha1, call);
  } catch (error) {
    if (!String((error as Error)?.message).startsWith('NOSCRIPT')) throw error;
    reply = await client.eval(fenceLua, call); // loads the script into the server's cache as well
  }
  if (!Array.isArray(reply) || reply.length !== 2)
    throw new Error(`unexpected reply from the fence script: ${JSON.stringify(reply)}`);
  const [verdict, value] = reply as [unknown, unknown];
  if (verdict === 'APPLIED') return;
  if (verdict === 'FENCED') throw new FencedOutError(claim.jobKey, claim.token, Number(value));
  throw new Error(`unexpected reply from the fence script: ${JSON.stringify(reply)}`);
}
