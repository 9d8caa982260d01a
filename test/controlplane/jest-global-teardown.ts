import { ControlPlane } from './controlplane.ts';

export default async function globalTeardown(): Promise<void> {
  const dir = process.env.SINGLETON_TEST_CLUSTER_DIR;
  if (!dir) return;
  await ControlPlane.attach(dir).stop();
}
