// A real local Kubernetes control plane: etcd → kube-apiserver (with an audit
// log of every request) → kube-controller-manager → kube-scheduler → kwok
// (simulated nodes, so Job Pods are scheduled, run and complete). Everything
// listens on 127.0.0.1 on ports chosen per run, and is stopped by PID.
//
// The state (PIDs, command lines, paths) lives in <dir>/state.json, so a test
// process, the CLI or a chaos harness can attach to a running control plane
// and stop, pause or restart one component.
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync, existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { resolveBinaries, type Binaries } from './binaries.ts';
import { createPki, issueClientCert, writeKubeconfig, type Pki } from './pki.ts';
import {
  freePort,
  isAlive,
  probe,
  startProcess,
  stopProcess,
  waitFor,
  sleep,
  type ProcessSpec,
  type RunningProcess,
  type TlsClient,
} from './process.ts';
import { writeKwokConfig } from './kwok-stages.ts';
import { startRealNode, stopRealNode, waitRealNodeReady, type RealNodeState } from './realnode.ts';

export type Component = 'etcd' | 'kube-apiserver' | 'kube-controller-manager' | 'kube-scheduler' | 'kwok';
const startOrder: Component[] = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'];

export interface ControlPlaneState {
  dir: string;
  server: string;
  kubeconfig: string;
  auditLog: string;
  etcdUrl: string;
  pki: Pki;
  processes: Partial<Record<Component, RunningProcess>>;
  nodeName: string;
  /** The opt-in real node (containerd + kubelet), when started with `realNode`. */
  realNode?: RealNodeState;
}

export interface StartOptions {
  /** Folder for PKI, data, logs and state; a fresh temporary folder by default. */
  dir?: string;
  /** Build missing binaries from the Go module proxy (default true). */
  build?: boolean;
  /** Start only these (in start order; default all). Without kwok and kube-controller-manager there is no node. */
  components?: Component[];
  /**
   * Also start a real node (containerd + kubelet, see realnode.ts) next to the
   * kwok node. Default: SINGLETON_REAL_NODE=1. Needs root and Debian's
   * containerd, runc and containernetworking-plugins.
   */
  realNode?: boolean;
  log?: (message: string) => void;
}

const AUDIT_POLICY = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
# The API server's own loopback client is noise for every question we ask.
- level: None
  users: ["system:apiserver"]
# SingletonJob status writes with their bodies: the chaos checker reads the
# terms and tokens each accepted write carried (few, small requests).
- level: Request
  verbs: ["update", "patch"]
  resources:
  - group: singleton.dev
    resources: ["singletonjobs/status"]
- level: Metadata
`;

export class ControlPlane {
  state: ControlPlaneState;

  private constructor(state: ControlPlaneState) {
    this.state = state;
  }

  static stateFile(dir: string): string {
    return path.join(dir, 'state.json');
  }

  /** Attaches to a control plane started by another process. */
  static attach(dir: string): ControlPlane {
    const file = ControlPlane.stateFile(dir);
    if (!existsSync(file)) throw new Error(`no control plane state at ${file}`);
    return new ControlPlane(JSON.parse(readFileSync(file, 'utf8')) as ControlPlaneState);
  }

  static async start(options: StartOptions = {}): Promise<ControlPlane> {
    const log = options.log ?? (() => {});
    const bins = resolveBinaries(options.build ?? true);
    const dir = options.dir ?? mkdtempSync(path.join(tmpdir(), 'singleton-cp-'));
    for (const sub of ['pki', 'logs', 'etcd-data']) mkdirSync(path.join(dir, sub), { recursive: true });
    const started = Date.now();
    log(`Generating PKI in ${dir}/pki`);
    const pki = createPki(path.join(dir, 'pki'));
    const [etcdClient, etcdPeer, apiPort, kwokPort] = await Promise.all([
      freePort(),
      freePort(),
      freePort(),
      freePort(),
    ]);
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = path.join(dir, 'kubeconfig');
    writeKubeconfig(kubeconfig, server, pki.caCert, {
      name: 'admin',
      clientCert: issueClientCert(pki, 'admin', ['system:masters']),
    });
    const componentKubeconfig = (user: string, groups: string[] = []) => {
      const file = path.join(dir, `${user.replace(/[^a-z0-9-]/gi, '_')}.kubeconfig`);
      writeKubeconfig(file, server, pki.caCert, { name: user, clientCert: issueClientCert(pki, user, groups) });
      return file;
    };
    const auditPolicy = path.join(dir, 'audit-policy.yaml');
    writeFileSync(auditPolicy, AUDIT_POLICY);
    const kwokConfig = writeKwokConfig(path.join(dir, 'kwok.yaml'), bins.kwokStages);
    const realNode = options.realNode ?? process.env.SINGLETON_REAL_NODE === '1';
    // The API server's client certificate for kubelets (logs, exec), when a real kubelet will serve.
    const kubeletClient = realNode
      ? issueClientCert(pki, 'kube-apiserver-kubelet-client', ['system:masters'])
      : undefined;

    const cp = new ControlPlane({
      dir,
      server,
      kubeconfig,
      auditLog: path.join(dir, 'logs', 'audit.log'),
      etcdUrl: `http://127.0.0.1:${etcdClient}`,
      pki,
      processes: {},
      nodeName: 'kwok-node-0',
    });
    const specs = cp.specs(bins, {
      etcdPeer,
      apiPort,
      kwokPort,
      auditPolicy,
      kwokConfig,
      cmKubeconfig: componentKubeconfig('system:kube-controller-manager'),
      schedulerKubeconfig: componentKubeconfig('system:kube-scheduler'),
      kwokKubeconfig: componentKubeconfig('kwok', ['system:masters']),
      kubeletClient,
    });
    try {
      const components = startOrder.filter((name) => !options.components || options.components.includes(name));
      for (const name of components) {
        cp.state.processes[name] = startProcess(specs[name]);
        cp.save();
        await cp.waitHealthy(name);
        log(`Started ${name} (pid ${cp.state.processes[name]?.pid}) after ${Date.now() - started} ms`);
      }
      if (components.includes('kwok') && components.includes('kube-controller-manager')) await cp.createNode();
      if (realNode) {
        const node = await startRealNode({
          clusterDir: dir,
          server,
          apiPort,
          pki,
          build: options.build ?? true,
          log,
          save: (n) => {
            cp.state.realNode = n;
            cp.save();
          },
        });
        await waitRealNodeReady(node, cp.kubeConfig());
        log(
          `Real node ${node.name} Ready (kubelet pid ${node.processes.kubelet?.pid}, node IP ${node.nodeIp}) after ${Date.now() - started} ms`,
        );
      }
      log(`Control plane ready at ${server} after ${Date.now() - started} ms`);
    } catch (err) {
      await cp.stop({ keepDir: true });
      throw err;
    }
    return cp;
  }

  private specs(
    bins: Binaries,
    o: {
      etcdPeer: number;
      apiPort: number;
      kwokPort: number;
      auditPolicy: string;
      kwokConfig: string;
      cmKubeconfig: string;
      schedulerKubeconfig: string;
      kwokKubeconfig: string;
      kubeletClient?: { cert: string; key: string };
    },
  ): Record<Component, ProcessSpec> {
    const { dir, pki, etcdUrl } = this.state;
    const logFile = (name: string) => path.join(dir, 'logs', `${name}.log`);
    const peer = `http://127.0.0.1:${o.etcdPeer}`;
    return {
      etcd: {
        name: 'etcd',
        command: bins.etcd,
        args: [
          '--name=default',
          `--data-dir=${path.join(dir, 'etcd-data')}`,
          `--listen-client-urls=${etcdUrl}`,
          `--advertise-client-urls=${etcdUrl}`,
          `--listen-peer-urls=${peer}`,
          `--initial-advertise-peer-urls=${peer}`,
          `--initial-cluster=default=${peer}`,
          '--unsafe-no-fsync=true',
          '--log-level=warn',
        ],
        log: logFile('etcd'),
      },
      'kube-apiserver': {
        name: 'kube-apiserver',
        command: bins.kubeApiserver,
        args: [
          `--etcd-servers=${etcdUrl}`,
          '--bind-address=127.0.0.1',
          `--secure-port=${o.apiPort}`,
          // Written into the `kubernetes` Service's endpoints only, never dialled
          // (TEST-NET-1); loopback is refused for this flag.
          '--advertise-address=192.0.2.10',
          `--tls-cert-file=${pki.serverCert}`,
          `--tls-private-key-file=${pki.serverKey}`,
          `--client-ca-file=${pki.caCert}`,
          '--authorization-mode=Node,RBAC',
          '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
          `--service-account-key-file=${pki.serviceAccountPub}`,
          `--service-account-signing-key-file=${pki.serviceAccountKey}`,
          '--service-cluster-ip-range=10.0.0.0/24',
          '--allow-privileged=true',
          `--cert-dir=${path.join(dir, 'pki')}`,
          `--audit-policy-file=${o.auditPolicy}`,
          `--audit-log-path=${this.state.auditLog}`,
          '--audit-log-maxsize=2000',
          '--audit-log-maxbackup=1',
          ...(o.kubeletClient
            ? [
                `--kubelet-client-certificate=${o.kubeletClient.cert}`,
                `--kubelet-client-key=${o.kubeletClient.key}`,
                `--kubelet-certificate-authority=${pki.caCert}`,
                '--kubelet-preferred-address-types=InternalIP',
              ]
            : []),
        ],
        log: logFile('kube-apiserver'),
      },
      'kube-controller-manager': {
        name: 'kube-controller-manager',
        command: bins.kubeControllerManager,
        args: [
          `--kubeconfig=${o.cmKubeconfig}`,
          `--authentication-kubeconfig=${o.cmKubeconfig}`,
          `--authorization-kubeconfig=${o.cmKubeconfig}`,
          '--leader-elect=false',
          '--secure-port=0',
          '--use-service-account-credentials=true',
          `--service-account-private-key-file=${pki.serviceAccountKey}`,
          `--root-ca-file=${pki.caCert}`,
          `--cluster-signing-cert-file=${pki.caCert}`,
          `--cluster-signing-key-file=${pki.caKey}`,
        ],
        log: logFile('kube-controller-manager'),
      },
      'kube-scheduler': {
        name: 'kube-scheduler',
        command: bins.kubeScheduler,
        args: [
          `--kubeconfig=${o.schedulerKubeconfig}`,
          `--authentication-kubeconfig=${o.schedulerKubeconfig}`,
          `--authorization-kubeconfig=${o.schedulerKubeconfig}`,
          '--leader-elect=false',
          '--secure-port=0',
        ],
        log: logFile('kube-scheduler'),
      },
      kwok: {
        name: 'kwok',
        command: bins.kwok,
        args: [
          `--kubeconfig=${o.kwokKubeconfig}`,
          // Only its own nodes: a real node's Pods are the kubelet's.
          '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
          '--node-lease-duration-seconds=40',
          `--server-address=127.0.0.1:${o.kwokPort}`,
          `--config=${o.kwokConfig}`,
        ],
        log: logFile('kwok'),
      },
    };
  }

  private save(): void {
    writeFileSync(ControlPlane.stateFile(this.state.dir), JSON.stringify(this.state, null, 2));
  }

  private tls(): TlsClient {
    const cfg = new k8s.KubeConfig();
    cfg.loadFromFile(this.state.kubeconfig);
    const user = cfg.getCurrentUser();
    return {
      ca: readFileSync(this.state.pki.caCert),
      cert: Buffer.from(user?.certData ?? '', 'base64'),
      key: Buffer.from(user?.keyData ?? '', 'base64'),
    };
  }

  /** A client-node KubeConfig for the admin identity. */
  kubeConfig(): k8s.KubeConfig {
    const cfg = new k8s.KubeConfig();
    cfg.loadFromFile(this.state.kubeconfig);
    return cfg;
  }

  private async waitHealthy(name: Component): Promise<void> {
    const proc = this.state.processes[name];
    switch (name) {
      case 'etcd':
        return waitFor(
          'etcd /health',
          async () => (await probe(`${this.state.etcdUrl}/health`)).status === 200,
          proc,
          30_000,
        );
      case 'kube-apiserver': {
        const tls = this.tls();
        return waitFor(
          'kube-apiserver /readyz',
          async () => (await probe(`${this.state.server}/readyz`, tls)).status === 200,
          proc,
          90_000,
        );
      }
      default:
        // These expose no port (secure-port=0); give them a moment to crash on bad flags.
        await sleep(300);
        return waitFor(`${name} to stay up`, async () => proc !== undefined && isAlive(proc.pid), proc, 5_000);
    }
  }

  private async createNode(): Promise<void> {
    const cfg = this.kubeConfig();
    const core = cfg.makeApiClient(k8s.CoreV1Api);
    const name = this.state.nodeName;
    await core.createNode({
      body: {
        metadata: {
          name,
          labels: {
            'kubernetes.io/hostname': name,
            'kubernetes.io/os': 'linux',
            'kubernetes.io/arch': 'amd64',
            type: 'kwok',
          },
          annotations: { 'kwok.x-k8s.io/node': 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
        },
        spec: {},
        status: {
          allocatable: { cpu: '64', memory: '256Gi', pods: '2000' },
          capacity: { cpu: '64', memory: '256Gi', pods: '2000' },
        },
      },
    });
    const kwok = this.state.processes.kwok;
    await waitFor(
      `node ${name} to be Ready and untainted`,
      async () => {
        const node = await core.readNode({ name });
        const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
        return ready && (node.spec?.taints ?? []).length === 0;
      },
      kwok,
      60_000,
    );
    await waitFor(
      'serviceaccount default/default',
      async () => (await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' })) !== undefined,
      this.state.processes['kube-controller-manager'],
      60_000,
    );
  }

  /** Stops one component by its PID (SIGTERM, or SIGKILL when `kill`). */
  async stopComponent(name: Component, kill = false): Promise<void> {
    const proc = this.state.processes[name];
    if (!proc) return;
    if (kill && isAlive(proc.pid)) process.kill(proc.pid, 'SIGKILL');
    await stopProcess(proc.pid);
  }

  /** Starts a stopped component again with its original command line. */
  async startComponent(name: Component): Promise<void> {
    const proc = this.state.processes[name];
    if (!proc) throw new Error(`${name} was never started`);
    if (isAlive(proc.pid)) return;
    this.state.processes[name] = startProcess(proc);
    this.save();
    await this.waitHealthy(name);
  }

  async restartComponent(name: Component, kill = false): Promise<void> {
    await this.stopComponent(name, kill);
    await this.startComponent(name);
  }

  /**
   * A cold copy of etcd's data folder (etcd is stopped for the copy and started
   * again; the API server rides it out). etcd's recovery guide allows a copy of
   * the data as a backup; `restoreEtcd` puts it back.
   */
  async backupEtcd(): Promise<string> {
    const data = path.join(this.state.dir, 'etcd-data');
    const backup = mkdtempSync(path.join(this.state.dir, 'etcd-backup-'));
    await this.stopComponent('etcd');
    try {
      cpSync(data, backup, { recursive: true });
    } finally {
      await this.startComponent('etcd');
    }
    return backup;
  }

  /**
   * Restores a backup as `etcdutl snapshot restore` WITHOUT --bump-revision
   * does — revisions, hence resourceVersions, go back to the backup's — then
   * restarts the API server, as the Kubernetes docs require after a restore.
   */
  async restoreEtcd(backup: string): Promise<void> {
    const data = path.join(this.state.dir, 'etcd-data');
    await this.stopComponent('kube-apiserver');
    await this.stopComponent('etcd');
    rmSync(data, { recursive: true, force: true });
    cpSync(backup, data, { recursive: true });
    await this.startComponent('etcd');
    await this.startComponent('kube-apiserver');
  }

  /** Issues a client-certificate kubeconfig for another identity (audit-log attribution). */
  kubeconfigFor(user: string, groups: string[] = []): string {
    const file = path.join(this.state.dir, `user-${user.replace(/[^a-z0-9-]/gi, '_')}.kubeconfig`);
    writeKubeconfig(file, this.state.server, this.state.pki.caCert, {
      name: user,
      clientCert: issueClientCert(this.state.pki, user, groups),
    });
    return file;
  }

  /** Writes a kubeconfig that authenticates with a bearer token (e.g. from TokenRequest). */
  kubeconfigForToken(name: string, token: string): string {
    const file = path.join(this.state.dir, `token-${name.replace(/[^a-z0-9-]/gi, '_')}.kubeconfig`);
    writeKubeconfig(file, this.state.server, this.state.pki.caCert, { name, token });
    return file;
  }

  /** Stops every component in reverse start order, by PID, then removes the folder. */
  async stop(options: { keepDir?: boolean } = {}): Promise<void> {
    let nodeError: unknown;
    if (this.state.realNode) {
      // First, while the API server still answers: the kubelet tears its Pods down.
      const api = this.state.processes['kube-apiserver'];
      try {
        await stopRealNode(this.state.realNode, {
          kubeConfig: api && isAlive(api.pid) ? this.kubeConfig() : undefined,
        });
      } catch (err) {
        nodeError = err;
      }
    }
    for (const name of [...startOrder].reverse()) await this.stopComponent(name);
    if (nodeError) throw nodeError;
    if (!options.keepDir && !process.env.SINGLETON_KEEP_CLUSTER_DIR)
      rmSync(this.state.dir, { recursive: true, force: true });
  }
}
