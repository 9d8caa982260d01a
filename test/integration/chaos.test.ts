// The chaos suite's CI profiles: three operator replicas against the shared
// local control plane, every fault kind and user action injected in a seeded
// random order for at least 2.5 minutes and until each was tried once (one
// full pass; about 5 minutes in all), then — profile ci-no-election — two
// minutes of the same with no single leader (each replica its own Lease,
// acting on every object, no self-fencing); each recorded history is checked
// against the guarantees. Any violation fails the test with the checker's account.
// Replay a failure with CHAOS_SEED=<seed> (or `npm run chaos -- --seed <seed>`).
import { testCluster, itLocal } from '../support/cluster.ts';
import { PROFILES, runChaos } from '../chaos/run.ts';
import { randomSeed } from '../chaos/rng.ts';

const seed = process.env.CHAOS_SEED ? Number(process.env.CHAOS_SEED) : randomSeed();

describe.each([
  ['ci', 'with one elected leader'],
  [
    'ci-no-election',
    'with no election at all: three replicas acting on every object at once, terms interleaving (fences only)',
  ],
])('chaos (profile %s)', (profile, what) => {
  itLocal(
    `keeps every guarantee under faults ${what} (seed ${seed})`,
    async () => {
      const cluster = testCluster();
      const lines: string[] = [];
      const result = await runChaos({
        seed,
        profile: PROFILES[profile]!,
        cp: cluster.local!,
        log: (line) => {
          lines.push(line);
          if (process.env.SINGLETON_VERBOSE) console.log(line);
        },
      });
      console.log(result.report);
      expect(result.history.faults.filter((f) => !f.skipped).length).toBeGreaterThan(0);
      expect(result.history.jobs.length).toBeGreaterThan(0);
      if (result.violations.length > 0)
        throw new Error(`${result.account}\n\nReport:\n${result.report}\n\nRun log:\n${lines.slice(-80).join('\n')}`);
    },
    10 * 60_000,
  );
});
