// One control plane per test run, shared by every integration test file.
// Workers find it through SINGLETON_TEST_CLUSTER_DIR (see test/support/cluster.ts).
// With USE_EXISTING_CLUSTER=true the tests use $KUBECONFIG instead and the
// tests that need the local control plane's audit log or processes skip.
import { ControlPlane } from './controlplane.ts';

export default async function globalSetup(): Promise<void> {
  if (process.env.USE_EXISTING_CLUSTER === 'true') return;
  const started = Date.now();
  const cp = await ControlPlane.start({ log: (m) => process.env.SINGLETON_VERBOSE && console.log(m) });
  process.env.SINGLETON_TEST_CLUSTER_DIR = cp.state.dir;
  console.log(
    `\nLocal control plane up at ${cp.state.server} in ${Date.now() - started} ms (state in ${cp.state.dir})`,
  );
}
