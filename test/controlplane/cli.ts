// `npm run cluster:up` / `npm run cluster:down` / `npm run cluster:status`:
// a local control plane for a person to poke at with kubectl. It lives in
// <repo>/.cluster (git-ignored) and keeps running after this command exits.
// `npm run cluster:up -- --real-node` (or SINGLETON_REAL_NODE=1) adds a real
// node (containerd + kubelet) next to the kwok node; cluster:down removes it
// and everything it left on the host.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ControlPlane } from './controlplane.ts';
import { isAlive } from './process.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const localClusterDir = path.join(root, '.cluster');

async function main(command: string | undefined): Promise<number> {
  const running = existsSync(ControlPlane.stateFile(localClusterDir))
    ? ControlPlane.attach(localClusterDir)
    : undefined;
  switch (command) {
    case 'up': {
      if (
        running &&
        running.state.processes['kube-apiserver'] &&
        isAlive(running.state.processes['kube-apiserver'].pid)
      ) {
        console.log(`Already running at ${running.state.server}\nexport KUBECONFIG=${running.state.kubeconfig}`);
        return 0;
      }
      if (running) await running.stop();
      const realNode = process.argv.includes('--real-node') || undefined;
      const cp = await ControlPlane.start({ dir: localClusterDir, realNode, log: (m) => console.log(m) });
      if (cp.state.realNode) {
        console.log(
          `\nReal node ${cp.state.realNode.name}: Pods select it with nodeSelector ${'singleton.dev/real-node=true'} and tolerate the taint of that name`,
        );
        console.log(
          `  ctr --address ${cp.state.realNode.socket} -n k8s.io images import <archive>   # images for it (pullPolicy: Never)`,
        );
      }
      console.log(`\nexport KUBECONFIG=${cp.state.kubeconfig}\n`);
      console.log(`Logs (audit log included): ${path.join(localClusterDir, 'logs')}`);
      console.log('Stop it with: npm run cluster:down');
      return 0;
    }
    case 'down':
      if (!running) {
        console.log('No local control plane is running.');
        return 0;
      }
      await running.stop();
      console.log('Stopped the local control plane and removed .cluster/.');
      return 0;
    case 'status':
      if (!running) {
        console.log('No local control plane.');
        return 1;
      }
      for (const [name, proc] of [
        ...Object.entries(running.state.processes),
        ...Object.entries(running.state.realNode?.processes ?? {}),
      ]) {
        console.log(
          `${name.padEnd(24)} pid ${String(proc.pid).padEnd(8)} ${isAlive(proc.pid) ? 'running' : 'STOPPED'}`,
        );
      }
      console.log(`\nexport KUBECONFIG=${running.state.kubeconfig}`);
      return 0;
    default:
      console.error('usage: cli.ts up|down|status');
      return 2;
  }
}

main(process.argv[2]).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err instanceof Error ? err.message : err);
    process.exit(1);
  },
);
