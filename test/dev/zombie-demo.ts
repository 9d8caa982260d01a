// `npm run demo:zombie`: the fencing story in one command — a run that outlives
// its turn cannot corrupt the store.
//
// A local control plane (kwok Pods), the operator's controller, a real Redis
// (Debian's redis-server) and a SingletonJob with concurrencyPolicy Replace.
// Run N gets fencing token t; its workload (packages/fence/test/workload.ts,
// a local process started with exactly the environment the operator put in
// the run's Pod) connects to Redis and is then paused (SIGSTOP) just before
// its write — a GC pause, a frozen container, a partitioned node. A new
// request replaces run N: run N+1 gets token t' > t and writes. Run N wakes up
// and sends its write: Redis refuses it (the fence holds t'), and the store
// holds only N+1's output. Everything started here is stopped by PID.
// (test/integration/fence-realnode.test.ts shows the same with real Pods on a
// real node, for PostgreSQL and Redis.)
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { createClient } from 'redis';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { findBinaries, startRedis } from '../../packages/fence/test/stores.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import { SingletonJobController } from '../../src/controller/index.ts';
import { API_VERSION, GROUP, KIND, PLURAL, VERSION } from '../../src/api/v1alpha1/singletonjob.ts';
import { kubectl, root } from './replicas.ts';

const say = (line: string) => process.stdout.write(`${line}\n`);

async function eventually<T>(what: string, fn: () => Promise<T | undefined | false>, timeoutMs = 60_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await fn().catch(() => undefined);
    if (value) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
const NS = 'zombie-demo';
const NAME = 'ledger';

async function main(): Promise<number> {
  const bin = findBinaries();
  if (typeof bin === 'string') {
    say(`demo:zombie needs Redis ${bin}`);
    return 2;
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'zombie-demo-'));
  const children: ChildProcess[] = [];
  say('Starting a local control plane and Redis …');
  const cp = await ControlPlane.start({ log: () => undefined });
  const redis = await startRedis(bin);
  const stopCaches = new AbortController();
  try {
    const kc = new k8s.KubeConfig();
    kc.loadFromFile(cp.state.kubeconfig);
    kubectl(cp.state.kubeconfig, ['apply', '--server-side', '-f', path.join(root, 'manifests/crds')]);
    kubectl(cp.state.kubeconfig, [
      'wait',
      '--for=condition=Established',
      'crd/singletonjobs.singleton.dev',
      '--timeout=60s',
    ]);
    await kc.makeApiClient(k8s.CoreV1Api).createNamespace({ body: { metadata: { name: NS } } });
    // The operator's controller, leading with a real term: the revision of a Lease write made now.
    const lease = await kc.makeApiClient(k8s.CoordinationV1Api).createNamespacedLease({
      namespace: NS,
      body: { metadata: { name: 'demo-term' }, spec: { holderIdentity: 'demo' } },
    });
    const controller = new SingletonJobController({
      kubeConfig: kc,
      namespaces: [NS],
      logger: pino({ level: 'silent' }),
    });
    void controller.startCaches(stopCaches.signal);
    await eventually('the controller caches', async () => controller.hasSynced());
    const leading = new AbortController();
    void controller.lead({
      identity: 'demo-leader',
      term: Number(lease.metadata!.resourceVersion),
      signal: leading.signal,
      assertValid: () => undefined,
    });
    stopCaches.signal.addEventListener('abort', () => leading.abort());

    const custom = kc.makeApiClient(k8s.CustomObjectsApi);
    const batch = kc.makeApiClient(k8s.BatchV1Api);
    await eventually('the SingletonJob API', async () =>
      Boolean(
        await custom.listNamespacedCustomObject({ group: GROUP, version: VERSION, plural: PLURAL, namespace: NS }),
      ),
    );
    await custom.createNamespacedCustomObject({
      group: GROUP,
      version: VERSION,
      plural: PLURAL,
      namespace: NS,
      body: {
        apiVersion: API_VERSION,
        kind: KIND,
        metadata: { name: NAME },
        spec: {
          concurrencyPolicy: 'Replace',
          jobTemplate: {
            spec: {
              template: {
                // kwok keeps the run's Pod "running" for 5 minutes: the run is in flight when it is replaced.
                metadata: { annotations: { 'pod-complete.stage.kwok.x-k8s.io/delay': '300s' } },
                spec: { restartPolicy: 'Never', containers: [{ name: 'export', image: 'ledger-export' }] },
              },
            },
          },
        },
      },
    });
    const start = async (id: string) => {
      await custom.patchNamespacedCustomObject(
        {
          group: GROUP,
          version: VERSION,
          plural: PLURAL,
          namespace: NS,
          name: NAME,
          body: { metadata: { annotations: { [Keys.runNow]: id } } },
        },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      const job = await eventually(`the Job of request ${id}`, async () =>
        (await batch.listNamespacedJob({ namespace: NS })).items.find(
          (j) => j.metadata?.annotations?.[Keys.requestId] === id && !j.metadata?.deletionTimestamp,
        ),
      );
      const env = Object.fromEntries(
        (job.spec!.template.spec!.containers[0]!.env ?? []).map((e) => [e.name, e.value ?? '']),
      );
      const go = path.join(dir, `${id}.go`);
      const child = spawn(process.execPath, [path.join(root, 'packages/fence/test/workload.ts')], {
        env: {
          PATH: process.env.PATH ?? '',
          ...env,
          FENCE_STORE: 'redis',
          FENCE_STORE_URL: redis.url,
          FENCE_GO_FILE: go,
        },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      children.push(child);
      const lines: Record<string, unknown>[] = [];
      child.stdout!.on('data', (b: Buffer) =>
        b
          .toString()
          .split('\n')
          .filter(Boolean)
          .forEach((l) => lines.push(JSON.parse(l) as Record<string, unknown>)),
      );
      await eventually(`workload ${id} ready`, async () => lines.some((l) => l.state === 'ready'));
      const exited = new Promise<number>((resolve) => child.on('exit', (code) => resolve(code ?? -1)));
      return { id, token: Number(env.SINGLETON_FENCING_TOKEN), run: env.SINGLETON_RUN_NAME, child, go, lines, exited };
    };

    const n = await start('night-1');
    say(`Run N   ${n.run}: fencing token ${n.token}; its workload is connected to Redis …`);
    n.child.kill('SIGSTOP');
    writeFileSync(n.go, '');
    say(`        … and is paused (SIGSTOP) right before its write: a zombie.`);
    const next = await start('night-2');
    say(`Run N+1 ${next.run}: fencing token ${next.token} (Replace ended run N in the cluster)`);
    writeFileSync(next.go, '');
    say(`        writes: exit ${await next.exited} ${JSON.stringify(next.lines.at(-1))}`);
    n.child.kill('SIGCONT');
    say(`Run N wakes up and sends its write: exit ${await n.exited} ${JSON.stringify(n.lines.at(-1))}`);
    const client = createClient({ url: redis.url });
    await client.connect();
    const key = `${NS}/${NAME}`;
    const outputs = await client.lRange(`outputs:{${key}}`, 0, -1);
    const fence = await client.get(`singleton-fence:{${key}}`);
    client.destroy();
    say(`Redis holds: outputs ${JSON.stringify(outputs)}, fence ${fence}`);
    const ok = outputs.length === 1 && outputs[0]!.includes(`@${next.token}`) && (await n.exited) === 3;
    say(
      ok
        ? 'The zombie was refused: only run N+1 wrote.'
        : 'UNEXPECTED: the store does not hold exactly run N+1’s write.',
    );
    return ok ? 0 : 1;
  } finally {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    stopCaches.abort();
    await redis.stop();
    await cp.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`demo:zombie: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exit(1);
  },
);
