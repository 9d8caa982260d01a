export { FencedOutError, IdentityError } from './errors.ts';
export {
  Annotations,
  Env,
  parseDownwardApiFile,
  parseToken,
  readAnnotationsFile,
  readRunIdentity,
} from './identity.ts';
export type { ReadIdentityOptions, RunIdentity } from './identity.ts';
export { FENCED_OUT_SQLSTATE, fenceSql, installPostgresFence, withPostgresFence } from './postgres.ts';
export type { IsolationLevel } from './postgres.ts';
export { fenceLua, redisFenceKey, redisFencedWrite } from './redis.ts';
export type { RedisScriptRunner, RedisWrite } from './redis.ts';
