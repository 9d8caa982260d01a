// The two ways a workload learns it must not write: its identity is unusable,
// or a store has seen a higher token for its SingletonJob.

/** A run's identity could not be read: a variable is missing, malformed, or contradicts another source. */
export class IdentityError extends Error {
  override name = 'IdentityError';
  /** The environment variable or annotation at fault, e.g. `SINGLETON_FENCING_TOKEN`. */
  readonly variable: string;
  readonly reason: 'missing' | 'malformed' | 'inconsistent';

  constructor(variable: string, reason: 'missing' | 'malformed' | 'inconsistent', detail: string) {
    super(`${variable} is ${reason}: ${detail}`);
    this.variable = variable;
    this.reason = reason;
  }
}

/**
 * The store refused the write: it has already accepted a write with a higher
 * token for this key, so this run or attempt has been superseded. Stop, write
 * nothing more, and do not retry the write.
 */
export class FencedOutError extends Error {
  override name = 'FencedOutError';
  /** The fence key, normally the SingletonJob's `namespace/name`. */
  readonly key: string;
  /** The token this write carried. */
  readonly token: number;
  /** The highest token the store has seen for the key (greater than `token`). */
  readonly highestToken: number;

  constructor(key: string, token: number, highestToken: number) {
    super(`fenced out: token ${token} for ${key} is below the highest token the store has seen, ${highestToken}`);
    this.key = key;
    this.token = token;
    this.highestToken = highestToken;
  }
}
