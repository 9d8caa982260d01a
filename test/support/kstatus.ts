// The kstatus library's verdict (sigs.k8s.io/cli-utils/pkg/kstatus/status, what
// Flux and the cli-utils appliers wait for) on objects, through the small Go
// program test/tools/kstatus, built and cached by test/tools/build.sh (keyed
// by the library's version and the program's sources, as computed here).
// Without the binary the callers skip, saying how to build it.
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { cacheDir, pinnedVersion } from '../controlplane/binaries.ts';

const sources = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../tools/kstatus');
const hash = createHash('sha256')
  .update(Buffer.concat(['go.mod', 'go.sum', 'main.go'].map((f) => readFileSync(path.join(sources, f)))))
  .digest('hex')
  .slice(0, 12);
export const KSTATUS = path.join(
  cacheDir(),
  'bin',
  `kstatus-${pinnedVersion('kstatus', 'sigs.k8s.io/cli-utils')}-${hash}`,
  'kstatus',
);
export const haveKstatus = existsSync(KSTATUS);
export const kstatusMissing = `${KSTATUS} not found; build it with: bash test/tools/build.sh kstatus`;

export interface KstatusResult {
  status: 'InProgress' | 'Failed' | 'Current' | 'Terminating' | 'NotFound' | 'Unknown';
  message: string;
}

/** kstatus of each object, in order. */
export function kstatus(objects: unknown[]): KstatusResult[] {
  return JSON.parse(
    execFileSync(KSTATUS, [], { input: JSON.stringify(objects), encoding: 'utf8', timeout: 30_000 }),
  ) as KstatusResult[];
}
