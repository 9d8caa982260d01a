// `npm run chaos [-- --seed N --duration 10m --faults kill-leader,partition --profile soak --cluster-dir DIR --out DIR]`
// Runs one chaos run and prints the figures table; exits 1 on any violation.
// `npm run chaos:soak` is the 30-minute profile.
import { parseArgs } from 'node:util';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { parseDuration } from '../../src/config/config.ts';
import { ALL_FAULTS } from './faults.ts';
import type { FaultKind } from './history.ts';
import { randomSeed } from './rng.ts';
import { PROFILES, runChaos } from './run.ts';

const { values } = parseArgs({
  options: {
    seed: { type: 'string' },
    duration: { type: 'string' },
    profile: { type: 'string', default: 'medium' },
    faults: { type: 'string' },
    'cluster-dir': { type: 'string' },
    out: { type: 'string' },
    help: { type: 'boolean' },
  },
  strict: true,
});

if (values.help) {
  console.log(`Usage: npm run chaos -- [--seed N] [--duration 10m] [--profile ci|medium|soak|no-election|no-election-soak|ci-no-election] [--faults a,b] [--cluster-dir DIR] [--out DIR]
  --seed         replay a run (the seed is printed at the start and end of every run)
  --duration     length of the fault phase (setup and a quiet tail come on top)
  --profile      ci (every kind once, at least 2.5 min), medium (8 min, default), soak (30 min);
                 no-election, no-election-soak, ci-no-election: the same lengths (ci: 2 min) with no
                 single leader: every replica acts on every object at once, terms interleaving
  --faults       subset of: ${ALL_FAULTS.join(', ')}
  --cluster-dir  attach to a control plane from \`npm run cluster:up\` (its folder, e.g. .cluster) instead of starting one
  --out          folder for history.json, report.txt and the replica logs (default: a temporary folder)`);
  process.exit(0);
}

const profile = PROFILES[values.profile];
if (!profile) throw new Error(`unknown profile "${values.profile}" (${Object.keys(PROFILES).join(', ')})`);
const seed = values.seed !== undefined ? Number(values.seed) : randomSeed();
if (!Number.isInteger(seed) || seed < 0) throw new Error(`--seed must be a non-negative integer, got "${values.seed}"`);
let durationMs = profile.durationMs;
if (values.duration) {
  const ms = parseDuration(values.duration);
  if (!ms) throw new Error(`--duration must look like 90s or 10m, got "${values.duration}"`);
  durationMs = ms;
}
const faults = values.faults?.split(',').map((f) => f.trim()) as FaultKind[] | undefined;
const unknown = faults?.filter((f) => !ALL_FAULTS.includes(f));
if (unknown?.length) throw new Error(`unknown fault kind(s) ${unknown.join(', ')}; known: ${ALL_FAULTS.join(', ')}`);

const cp = values['cluster-dir'] ? ControlPlane.attach(values['cluster-dir']) : undefined;
const result = await runChaos({
  seed,
  profile: { ...profile, durationMs },
  ...(faults ? { faults } : {}),
  ...(cp ? { cp } : {}),
  ...(values.out ? { outDir: values.out } : {}),
});
process.exit(result.violations.length === 0 ? 0 : 1);
