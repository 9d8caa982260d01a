// What the API server's version tells about the behaviour the operator may
// rely on. Read once per leadership (GET /version); unknown = assume the
// oldest behaviour.
import type { VersionApi } from '@kubernetes/client-node';

export interface ServerVersion {
  major: number;
  minor: number;
  gitVersion: string;
}

/** major/minor as /version reports them ("1", "31+" on some distributions). */
export function parseServerVersion(info: {
  major?: string;
  minor?: string;
  gitVersion?: string;
}): ServerVersion | undefined {
  const major = Number.parseInt(info.major ?? '', 10);
  const minor = Number.parseInt(info.minor ?? '', 10);
  if (!Number.isInteger(major) || !Number.isInteger(minor)) return undefined;
  return { major, minor, gitVersion: info.gitVersion ?? `v${major}.${minor}` };
}

/**
 * Since 1.31 the Job controller adds Complete/Failed only once every Pod of
 * the Job is terminal (kubernetes#123775 fixed by KEP-4368's delayed terminal
 * conditions): a finished Job then proves its Pods ended.
 */
export function jobsFinishAfterPods(v: ServerVersion | undefined): boolean {
  return v !== undefined && (v.major > 1 || (v.major === 1 && v.minor >= 31));
}

export async function readServerVersion(api: VersionApi): Promise<ServerVersion | undefined> {
  return parseServerVersion(await api.getCode());
}
