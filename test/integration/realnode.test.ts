// The opt-in real node of the local control plane (test/controlplane/realnode.ts):
// a kubelet from the same Kubernetes tools module on Debian's containerd + runc
// + CNI plugins registers Ready next to the kwok node, runs a Pod for real
// (bridge address, UID 65532, read-only root filesystem, in-cluster config
// from the ServiceAccount mount through the `kubernetes` Service, logs through
// the API server), and stopping it leaves nothing on the host.
//
// Its own control plane (not the shared one of the other integration tests). Skipped
// with the reason when the machine cannot run a node (not root, packages missing).
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { isAlive } from '../controlplane/process.ts';
import {
  ctr,
  hostLeftovers,
  hostSnapshot,
  shimPids,
  realNodePlacement,
  realNodeUnavailable,
  REAL_NODE_LABEL,
} from '../controlplane/realnode.ts';
import { eventually } from '../support/cluster.ts';

const unavailable = realNodeUnavailable();
if (unavailable) console.warn(`skipping the real-node tests: ${unavailable}`);
const describeNode = unavailable ? describe.skip : describe;

const kubectl = (kubeconfig: string, args: string[]) =>
  execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], { encoding: 'utf8' });

describeNode('a real node next to kwok', () => {
  let cp: ControlPlane;
  let before: ReturnType<typeof hostSnapshot>;
  let core: k8s.CoreV1Api;
  const namespace = 'real-node-test';
  let sleeper: k8s.V1Pod;

  beforeAll(async () => {
    before = hostSnapshot();
    const started = Date.now();
    cp = await ControlPlane.start({ realNode: true });
    console.log(`control plane with a real node Ready in ${Date.now() - started} ms`);
    core = cp.kubeConfig().makeApiClient(k8s.CoreV1Api);
  }, 600_000);

  afterAll(async () => {
    // Normally stopped by the last test; this is for a failure before it.
    if (cp && existsSync(cp.state.dir)) await cp.stop().catch((err: unknown) => console.error(err));
  }, 120_000);

  it('registers Ready with a non-loopback InternalIP, its own label and taint; kwok keeps its own node only', async () => {
    const node = cp.state.realNode!;
    const real = await core.readNode({ name: node.name });
    expect(real.status?.addresses).toContainEqual({ type: 'InternalIP', address: node.nodeIp });
    expect(real.metadata?.labels?.[REAL_NODE_LABEL]).toBe('true');
    expect(real.spec?.taints).toEqual([{ key: REAL_NODE_LABEL, value: 'true', effect: 'NoSchedule' }]);
    expect(real.status?.nodeInfo?.kubeletVersion).toBe('v1.36.3');
    expect(real.status?.nodeInfo?.containerRuntimeVersion).toMatch(/^containerd:\/\//);
    expect(real.metadata?.annotations?.['kwok.x-k8s.io/node']).toBeUndefined();
    const kwok = await core.readNode({ name: cp.state.nodeName });
    expect(kwok.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
  });

  it('runs a Pod for real: bridge address, UID 65532, read-only root, in-cluster config from the ServiceAccount mount, kubectl logs', async () => {
    const node = cp.state.realNode!;
    await core.createNamespace({
      body: { metadata: { name: namespace, labels: { 'pod-security.kubernetes.io/enforce': 'restricted' } } },
    });
    const rbac = cp.kubeConfig().makeApiClient(k8s.RbacAuthorizationV1Api);
    await rbac.createNamespacedRoleBinding({
      namespace,
      body: {
        metadata: { name: 'default-view' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'view' },
        subjects: [{ kind: 'ServiceAccount', name: 'default', namespace }],
      },
    });
    await eventually(
      'serviceaccount default',
      async () => core.readNamespacedServiceAccount({ name: 'default', namespace }),
      30_000,
    );
    const pod = (name: string, command: string[], restartPolicy: string): k8s.V1Pod => ({
      metadata: { name, namespace },
      spec: {
        ...realNodePlacement,
        restartPolicy,
        securityContext: {
          runAsNonRoot: true,
          runAsUser: 65532,
          runAsGroup: 65532,
          seccompProfile: { type: 'RuntimeDefault' },
        },
        containers: [
          {
            name: 'main',
            image: node.sandboxImage,
            imagePullPolicy: 'Never',
            command,
            securityContext: {
              allowPrivilegeEscalation: false,
              readOnlyRootFilesystem: true,
              capabilities: { drop: ['ALL'] },
            },
          },
        ],
      },
    });
    await core.createNamespacedPod({
      namespace,
      body: pod('probe', ['/incluster', `/api/v1/namespaces/${namespace}/pods/probe`], 'Never'),
    });
    await core.createNamespacedPod({ namespace, body: pod('sleeper', ['/pause'], 'Always') });

    const probe = await eventually(
      'the probe Pod to succeed',
      async () => {
        const p = await core.readNamespacedPod({ name: 'probe', namespace });
        if (p.status?.phase === 'Failed')
          throw new Error(`probe failed: ${kubectl(cp.state.kubeconfig, ['logs', '-n', namespace, 'probe'])}`);
        return p.status?.phase === 'Succeeded' ? p : undefined;
      },
      60_000,
      250,
    );
    expect(probe.spec?.nodeName).toBe(node.name);
    expect(probe.status?.podIP?.startsWith(node.podCidr.replace(/0\/24$/, ''))).toBe(true);
    // The API server fetched the log from the kubelet (its serving cert from the harness CA).
    const log = kubectl(cp.state.kubeconfig, ['logs', '-n', namespace, 'probe']);
    expect(log).toContain(`GET https://10.0.0.1:443/api/v1/namespaces/${namespace}/pods/probe: 200`);
    expect(log).toContain(`"uid":"${probe.metadata?.uid}"`);
    // …written into the pod logs folder under the cluster's folder.
    expect(existsSync(`${node.dir}/pod-logs/${namespace}_probe_${probe.metadata?.uid}`)).toBe(true);

    sleeper = await eventually(
      'the sleeper Pod to run',
      async () => {
        const p = await core.readNamespacedPod({ name: 'sleeper', namespace });
        return p.status?.containerStatuses?.[0]?.ready ? p : undefined;
      },
      60_000,
      250,
    );
    const id = sleeper.status!.containerStatuses![0]!.containerID!.replace('containerd://', '');
    const spec = JSON.parse(ctr(node, ['containers', 'info', id])).Spec as {
      root: { readonly?: boolean };
      process: { user: { uid: number; gid: number } };
    };
    expect(spec.root.readonly).toBe(true);
    expect(spec.process.user).toMatchObject({ uid: 65532, gid: 65532 });
    const pid = Number(
      /^\S+\s+(\d+)\s+RUNNING/m.exec(
        ctr(node, ['tasks', 'ls'])
          .split('\n')
          .find((l) => l.startsWith(id)) ?? '',
      )?.[1],
    );
    expect(readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+65532\s+65532\s+65532\s+65532$/m);
  });

  it('stops by PID and leaves no processes, mounts, interfaces, iptables rules, cgroups or folders behind, also after kubelet and containerd crashed', async () => {
    const node = cp.state.realNode!;
    const pids = [
      ...Object.values(cp.state.processes).map((p) => p.pid),
      ...Object.values(node.processes).map((p) => p.pid),
    ];
    const shims = shimPids(node);
    expect(shims.length).toBeGreaterThan(0);
    // The hard way: kubelet and containerd die with Pods running (their shims, containers,
    // network namespaces, mounts and cgroups stay behind), as when a test run is killed;
    // one Pod is frozen (cgroup freezer), as a test that pauses a workload leaves it.
    const podCgroup = execFileSync(
      'find',
      [`/sys/fs/cgroup/freezer${node.cgroupRoot}`, '-type', 'd', '-name', `pod${sleeper.metadata!.uid}`],
      { encoding: 'utf8' },
    ).trim();
    expect(podCgroup).not.toBe('');
    writeFileSync(`${podCgroup}/freezer.state`, 'FROZEN');
    process.kill(node.processes.kubelet!.pid, 'SIGKILL');
    process.kill(node.processes.containerd!.pid, 'SIGKILL');
    await eventually(
      'kubelet and containerd gone',
      async () => ![node.processes.kubelet!.pid, node.processes.containerd!.pid].some(isAlive),
      10_000,
      50,
    );
    expect(hostLeftovers(before, hostSnapshot(), cp.state.dir).length).toBeGreaterThan(0);
    const started = Date.now();
    await cp.stop();
    console.log(`crashed real node and control plane stopped and cleaned up in ${Date.now() - started} ms`);
    expect([...pids, ...shims].filter(isAlive)).toEqual([]);
    expect(hostLeftovers(before, hostSnapshot(), cp.state.dir)).toEqual([]);
    expect(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim()).toBe(node.ipForwardBefore);
    if (!node.runContainerdBefore) expect(existsSync('/run/containerd')).toBe(false);
    if (!node.netnsDirBefore) expect(existsSync('/var/run/netns')).toBe(false);
  }, 120_000);
});
