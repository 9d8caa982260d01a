import type { RunIdentity } from './identity.ts';

/** A fence claim must name a key and carry a token 1 ≤ token < 2^53 (a RunIdentity always does). */
export function checkClaim(claim: Pick<RunIdentity, 'jobKey' | 'token'>): void {
  if (typeof claim.jobKey !== 'string' || claim.jobKey === '')
    throw new TypeError('fence claim: jobKey must be a non-empty string');
  if (!Number.isSafeInteger(claim.token) || claim.token < 1)
    throw new TypeError(`fence claim: token ${claim.token} is not an integer 1 ≤ token < 2^53`);
}
