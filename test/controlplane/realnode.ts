// An opt-in real node next to the kwok node: containerd (Debian's, with its own
// config, root, state and socket under the cluster's folder), runc, the CNI
// bridge + host-local + loopback + portmap plugins, and a kubelet built from the
// same Kubernetes tools module as the control plane. Pods that must run for real
// select it (label `singleton.dev/real-node=true`) and tolerate its taint
// (`singleton.dev/real-node=true:NoSchedule`), so the controller tests' Pods
// never land on it by accident.
//
// The `kubernetes` Service from Pods: no kube-proxy. The harness programs the
// one Service Pods need — 10.0.0.1:443, what the kubelet puts into every
// container as KUBERNETES_SERVICE_HOST/PORT — as a DNAT, for packets entering
// from the node's bridge, to the API server's loopback port (route_localnet on
// that bridge lets the kernel route 127.0.0.1 for it). So the in-cluster
// configuration of any client (ServiceAccount token and CA from the projected
// mount, the env the kubelet sets) works unchanged: the serving certificate
// carries 10.0.0.1. Other ClusterIPs are not routed.
//
// Everything the node creates is recorded in the control plane's state.json
// (`realNode`) and taken down by `stopRealNode`, which is idempotent and also
// works after a crash: Pods deleted through the API so the kubelet tears their
// sandboxes down (CNI DEL), kubelet stopped by PID, leftover tasks killed with
// ctr, containerd and its shims stopped by PID, every mount under the node's
// folder and the sandboxes' network namespaces unmounted, the bridge and its
// veths deleted, the iptables rules removed, the cgroups removed in every
// hierarchy, the folder (pod logs included) removed.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
  statSync,
  copyFileSync,
  chmodSync,
} from 'node:fs';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { buildBinaries, cacheDir, pinnedVersion } from './binaries.ts';
import { issueClientCert, issueServingCert, writeKubeconfig, type Pki } from './pki.ts';
import { freePort, isAlive, sleep, startProcess, stopProcess, waitFor, type RunningProcess } from './process.ts';

export const REAL_NODE_LABEL = 'singleton.dev/real-node';
/** What a Pod needs to run on the real node. */
export const realNodePlacement = {
  nodeSelector: { [REAL_NODE_LABEL]: 'true' },
  tolerations: [{ key: REAL_NODE_LABEL, operator: 'Equal', value: 'true', effect: 'NoSchedule' }],
};

const CNI_BIN = '/usr/lib/cni';
const SERVICE_IP = '10.0.0.1';

export interface RealNodeState {
  name: string;
  dir: string;
  /** Index of the bridge/subnet/chain/cgroup names, unique on this machine while the node lives. */
  index: number;
  bridge: string;
  /** The bridge's address: the node's InternalIP and the Pods' gateway. */
  nodeIp: string;
  podCidr: string;
  chain: string;
  cgroupRoot: string;
  kubeletPort: number;
  socket: string;
  /** Sandbox image (the static pause binary; also holds /incluster). */
  sandboxImage: string;
  runtime: string;
  /** net.ipv4.ip_forward before the node started (the bridge plugin turns it on). */
  ipForwardBefore: string;
  /** Whether /run/containerd existed before (containerd 1.6 puts its shims' sockets in /run/containerd/s whatever its config says). */
  runContainerdBefore: boolean;
  /** Whether /var/run/netns existed before (containerd creates it for the sandboxes' network namespaces). */
  netnsDirBefore: boolean;
  /** Whether the kubelet's own iptables chains (KUBE-FIREWALL, KUBE-KUBELET-CANARY, KUBE-IPTABLES-HINT) existed before. */
  kubeletChainsBefore: boolean;
  processes: { containerd?: RunningProcess; kubelet?: RunningProcess };
}

interface NodeBinaries {
  kubelet: string;
  pause: string;
  incluster: string;
}

/** Why a real node cannot start on this machine, or undefined when it can. */
export function realNodeUnavailable(): string | undefined {
  if (process.platform !== 'linux') return 'a real node needs Linux';
  if (process.getuid?.() !== 0) return 'a real node needs root (containerd, kubelet, network and cgroups)';
  const need: Array<[string, string]> = [
    ['containerd', 'containerd'],
    ['ctr', 'containerd'],
    ['runc', 'runc'],
    ['iptables', 'iptables'],
    ['ip', 'iproute2'],
  ];
  const missing = need
    .filter(([bin]) => spawnSync('sh', ['-c', `command -v ${bin}`]).status !== 0)
    .map(([, pkg]) => pkg);
  for (const plugin of ['bridge', 'host-local', 'loopback', 'portmap']) {
    if (!existsSync(path.join(CNI_BIN, plugin))) missing.push('containernetworking-plugins');
  }
  if (missing.length > 0)
    return `a real node needs the Debian packages ${[...new Set(missing)].join(', ')} (apt-get install)`;
  return undefined;
}

function run(cmd: string, args: string[], options: { input?: string } = {}): string {
  return execFileSync(cmd, args, { encoding: 'utf8', input: options.input, stdio: ['pipe', 'pipe', 'pipe'] });
}

function tryRun(cmd: string, args: string[]): { ok: boolean; out: string } {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  return { ok: res.status === 0, out: `${res.stdout ?? ''}${res.stderr ?? ''}` };
}

/** kubelet and the sandbox image's binaries, built into the cache by test/tools/build.sh node. */
export function resolveNodeBinaries(build = true): NodeBinaries {
  const toolsDir = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', 'tools');
  const want = (): NodeBinaries => {
    // The same key as build.sh: the hash of the nodeimage module's sources.
    const h = execFileSync(
      'bash',
      [
        '-c',
        'cd "$0" && cat go.mod $(find . -name \'*.go\' | LC_ALL=C sort) | sha256sum | cut -c1-16',
        path.join(toolsDir, 'nodeimage'),
      ],
      {
        encoding: 'utf8',
      },
    ).trim();
    const img = path.join(cacheDir(), 'bin', `nodeimage-${h}`);
    return {
      kubelet:
        process.env.TEST_ASSET_KUBELET ??
        path.join(cacheDir(), 'bin', `kubelet-${pinnedVersion('k8s', 'k8s.io/kubernetes')}`, 'kubelet'),
      pause: path.join(img, 'pause'),
      incluster: path.join(img, 'incluster'),
    };
  };
  let bins = want();
  if (Object.values(bins).some((p) => !existsSync(p)) && build) {
    buildBinaries(['node']);
    bins = want();
  }
  const missing = Object.entries(bins).filter(([, p]) => !existsSync(p));
  if (missing.length > 0)
    throw new Error(
      `real-node binaries missing: ${missing.map(([k, p]) => `${k} (${p})`).join(', ')}; run \`bash test/tools/build.sh node\``,
    );
  return bins;
}

// ---------------------------------------------------------------------------
// Images

const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/**
 * Writes a docker-archive (what `docker save` writes, `ctr images import`
 * reads) of a one-layer image holding `files` at the root.
 */
export function writeImageArchive(
  out: string,
  ref: string,
  files: Record<string, string>,
  config: { entrypoint: string[]; user?: string },
): void {
  const work = `${out}.work`;
  rmSync(work, { recursive: true, force: true });
  const stage = path.join(work, 'rootfs');
  mkdirSync(stage, { recursive: true });
  for (const [name, src] of Object.entries(files)) {
    copyFileSync(src, path.join(stage, name));
    chmodSync(path.join(stage, name), 0o755);
  }
  const layer = path.join(work, 'layer.tar');
  run('tar', [
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--mtime=@0',
    '--sort=name',
    '-C',
    stage,
    '-cf',
    layer,
    '.',
  ]);
  const diffId = `sha256:${sha256(readFileSync(layer))}`;
  const imageConfig = JSON.stringify({
    architecture: 'amd64',
    os: 'linux',
    config: { Entrypoint: config.entrypoint, Env: ['PATH=/'], ...(config.user ? { User: config.user } : {}) },
    rootfs: { type: 'layers', diff_ids: [diffId] },
    history: [{ created_by: 'singleton-operator test/controlplane/realnode.ts' }],
  });
  const configName = `${sha256(imageConfig)}.json`;
  writeFileSync(path.join(work, configName), imageConfig);
  writeFileSync(
    path.join(work, 'manifest.json'),
    JSON.stringify([{ Config: configName, RepoTags: [ref], Layers: ['layer.tar'] }]),
  );
  run('tar', [
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '-C',
    work,
    '-cf',
    out,
    'manifest.json',
    configName,
    'layer.tar',
  ]);
  rmSync(work, { recursive: true, force: true });
}

/** ctr against the node's containerd, in the CRI's namespace. */
export function ctr(node: Pick<RealNodeState, 'socket'>, args: string[]): string {
  return run('ctr', ['--address', node.socket, '--namespace', 'k8s.io', ...args]);
}

/** Imports an image archive (docker or OCI) into the node's containerd, where the kubelet finds it. */
export function importImage(node: Pick<RealNodeState, 'socket'>, archive: string): void {
  ctr(node, ['images', 'import', '--no-unpack=false', archive]);
}

// ---------------------------------------------------------------------------
// Host resources

const cgroupMounts = (): string[] =>
  readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => line.split(' '))
    .filter((f) => f.length > 8 && ['cgroup', 'cgroup2'].includes(f[f.indexOf('-') + 1]!))
    .map((f) => f[4]!)
    .filter((p) => p.startsWith('/sys/fs/cgroup'));

/** Mount points at or below `dir` (deepest first). mountinfo names real paths (/var/run is /run). */
function mountsUnder(dir: string): string[] {
  try {
    dir = realpathSync(dir);
  } catch {
    try {
      dir = path.join(realpathSync(path.dirname(dir)), path.basename(dir));
    } catch {
      // keep as given
    }
  }
  const decode = (s: string) => s.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8)));
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((line) => decode(line.split(' ')[4] ?? ''))
    .filter((p) => p === dir || p.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

function unmountAll(paths: string[]): string[] {
  const failed: string[] = [];
  for (const p of paths) {
    if (tryRun('umount', [p]).ok) continue;
    if (!tryRun('umount', ['-l', p]).ok) failed.push(p);
  }
  return failed;
}

const linkExists = (name: string) => tryRun('ip', ['link', 'show', 'dev', name]).ok;

/** Whether another real node (a so-node<i> bridge other than `except`) lives on this machine. */
const otherRealNodes = (except: string) =>
  tryRun('ip', ['-o', 'link', 'show', 'type', 'bridge'])
    .out.split('\n')
    .some((l) => {
      const name = /^\d+: (so-node\d+)[:@]/.exec(l)?.[1];
      return name !== undefined && name !== except;
    });

/**
 * The kubelet's own chains (every kubelet makes them, for IPv4 and IPv6): the
 * hint chain, the canaries and the localnet firewall with its INPUT/OUTPUT jumps.
 */
function removeKubeletChains(): string[] {
  const problems: string[] = [];
  for (const bin of ['iptables', 'ip6tables']) {
    if (!tryRun(bin, ['-w', '-L', '-n']).ok) continue;
    for (const base of ['INPUT', 'OUTPUT'])
      while (tryRun(bin, ['-w', '-t', 'filter', '-D', base, '-j', 'KUBE-FIREWALL']).ok);
    for (const table of ['filter', 'nat', 'mangle']) {
      for (const chain of ['KUBE-FIREWALL', 'KUBE-KUBELET-CANARY', 'KUBE-IPTABLES-HINT']) {
        if (!tryRun(bin, ['-w', '-t', table, '-S', chain]).ok) continue;
        tryRun(bin, ['-w', '-t', table, '-F', chain]);
        const res = tryRun(bin, ['-w', '-t', table, '-X', chain]);
        if (!res.ok) problems.push(`${bin} -t ${table} -X ${chain}: ${res.out.trim()}`);
      }
    }
  }
  return problems;
}

/** Claims a free index: the bridge `so-node<i>` (its creation is the lock) with 10.244.<i>.1/24. */
function claimBridge(): { index: number; bridge: string; nodeIp: string; podCidr: string } {
  const routes = run('ip', ['-4', 'route', 'show']);
  for (let index = 0; index < 200; index++) {
    const bridge = `so-node${index}`;
    const subnet = `10.244.${index}.`;
    if (routes.includes(subnet) || linkExists(bridge)) continue;
    if (!tryRun('ip', ['link', 'add', 'name', bridge, 'type', 'bridge']).ok) continue;
    return { index, bridge, nodeIp: `${subnet}1`, podCidr: `${subnet}0/24` };
  }
  throw new Error('no free so-node<i> bridge / 10.244.<i>.0/24 subnet for a real node');
}

// ---------------------------------------------------------------------------
// Start

export interface StartRealNodeInput {
  /** The cluster's folder; the node lives in <dir>/node. */
  clusterDir: string;
  server: string;
  apiPort: number;
  pki: Pki;
  /** Called as soon as there is something to clean up, so a crash mid-start can be cleaned by stopRealNode. */
  save: (node: RealNodeState) => void;
  log: (message: string) => void;
  build?: boolean;
}

export async function startRealNode(input: StartRealNodeInput): Promise<RealNodeState> {
  const unavailable = realNodeUnavailable();
  if (unavailable) throw new Error(unavailable);
  const started = Date.now();
  const bins = resolveNodeBinaries(input.build ?? true);
  const dir = path.join(input.clusterDir, 'node');
  for (const sub of ['containerd', 'cni/net.d', 'cni/ipam', 'kubelet', 'pki', 'pod-logs', 'logs', 'images'])
    mkdirSync(path.join(dir, sub), { recursive: true });
  const name = 'real-node-0';
  const runtimeBinary = process.env.SINGLETON_NODE_RUNTIME ?? run('sh', ['-c', 'command -v runc']).trim();
  const imgHash = sha256(Buffer.concat([readFileSync(bins.pause), readFileSync(bins.incluster)])).slice(0, 12);
  const ipForwardBefore = readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim();
  // With another real node running, the chains are the real nodes' own: the last one to stop removes them.
  const kubeletChainsBefore =
    !otherRealNodes('') && tryRun('iptables', ['-w', '-t', 'mangle', '-S', 'KUBE-IPTABLES-HINT']).ok;
  const net = claimBridge();
  const node: RealNodeState = {
    name,
    dir,
    ...net,
    chain: `SO-NODE${net.index}`,
    cgroupRoot: `/singleton-node${net.index}`,
    kubeletPort: await freePort(),
    socket: path.join(dir, 'containerd', 'containerd.sock'),
    sandboxImage: `localhost/singleton-node-pause:${imgHash}`,
    runtime: runtimeBinary,
    ipForwardBefore,
    kubeletChainsBefore,
    runContainerdBefore: existsSync('/run/containerd'),
    netnsDirBefore: existsSync('/var/run/netns'),
    processes: {},
  };
  input.save(node);

  // Network: the bridge (Pods' gateway, node IP) and the DNAT of the kubernetes Service.
  run('ip', ['addr', 'add', `${node.nodeIp}/24`, 'dev', node.bridge]);
  run('ip', ['link', 'set', node.bridge, 'up']);
  writeFileSync(`/proc/sys/net/ipv4/conf/${node.bridge}/route_localnet`, '1');
  run('iptables', ['-w', '-t', 'nat', '-N', node.chain]);
  run('iptables', [
    '-w',
    '-t',
    'nat',
    '-A',
    node.chain,
    '-d',
    `${SERVICE_IP}/32`,
    '-p',
    'tcp',
    '--dport',
    '443',
    '-j',
    'DNAT',
    '--to-destination',
    `127.0.0.1:${input.apiPort}`,
  ]);
  run('iptables', [
    '-w',
    '-t',
    'nat',
    '-I',
    'PREROUTING',
    '-i',
    node.bridge,
    '-m',
    'comment',
    '--comment',
    `singleton real node ${node.index}`,
    '-j',
    node.chain,
  ]);

  // cgroups: the kubelet's cgroupRoot must exist in every hierarchy.
  for (const mount of cgroupMounts()) {
    const cg = path.join(mount, node.cgroupRoot);
    mkdirSync(cg, { recursive: true });
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(path.join(cg, file)) && readFileSync(path.join(cg, file), 'utf8').trim() === '') {
        writeFileSync(path.join(cg, file), readFileSync(path.join(mount, file), 'utf8'));
      }
    }
  }

  // CNI: bridge + host-local (state under the node folder) + portmap, and loopback.
  writeFileSync(
    path.join(dir, 'cni/net.d/10-singleton.conflist'),
    JSON.stringify(
      {
        cniVersion: '1.0.0',
        name: `singleton-node${node.index}`,
        plugins: [
          {
            type: 'bridge',
            bridge: node.bridge,
            isGateway: true,
            ipMasq: false,
            hairpinMode: true,
            ipam: {
              type: 'host-local',
              dataDir: path.join(dir, 'cni/ipam'),
              ranges: [[{ subnet: node.podCidr, gateway: node.nodeIp }]],
              routes: [{ dst: '0.0.0.0/0' }],
            },
          },
          { type: 'portmap', capabilities: { portMappings: true } },
        ],
      },
      null,
      2,
    ),
  );

  // containerd: its own root, state, socket, runc state, and the sandbox image built here.
  const cd = path.join(dir, 'containerd');
  writeFileSync(
    path.join(cd, 'config.toml'),
    `version = 2
root = "${cd}/root"
state = "${cd}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "${node.socket}"
[ttrpc]
  address = "${cd}/containerd.sock.ttrpc"
[debug]
  address = ""
[metrics]
  address = ""
[plugins."io.containerd.internal.v1.opt"]
  path = "${cd}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${node.sandboxImage}"
  # Writing a negative oom_score_adj is refused on these machines, even as root.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "${runtimeBinary}"
        Root = "${cd}/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "${CNI_BIN}"
    conf_dir = "${dir}/cni/net.d"
    max_conf_num = 1
`,
  );
  const containerdBin = run('sh', ['-c', 'command -v containerd']).trim();
  node.processes.containerd = startProcess({
    name: 'containerd',
    command: containerdBin,
    args: ['--config', path.join(cd, 'config.toml')],
    log: path.join(dir, 'logs', 'containerd.log'),
  });
  input.save(node);
  await waitFor(
    'containerd to answer',
    async () => existsSync(node.socket) && tryRun('ctr', ['--address', node.socket, 'version']).ok,
    node.processes.containerd,
    30_000,
  );
  const pauseArchive = path.join(dir, 'images', 'pause.tar');
  writeImageArchive(
    pauseArchive,
    node.sandboxImage,
    { pause: bins.pause, incluster: bins.incluster },
    { entrypoint: ['/pause'] },
  );
  importImage(node, pauseArchive);
  input.log(`containerd up with the sandbox image after ${Date.now() - started} ms`);

  // kubelet: node client cert and serving cert from the harness CA.
  const pkiDir = path.join(dir, 'pki');
  const client = issueClientCert(input.pki, `system:node:${name}`, ['system:nodes']);
  const kubeconfig = path.join(pkiDir, 'kubelet.kubeconfig');
  writeKubeconfig(kubeconfig, input.server, input.pki.caCert, { name: `system:node:${name}`, clientCert: client });
  const serving = issueServingCert(input.pki, `kubelet-${name}`, [node.nodeIp], [name]);
  const healthzPort = await freePort();
  const config = {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    address: node.nodeIp,
    port: node.kubeletPort,
    readOnlyPort: 0,
    healthzBindAddress: '127.0.0.1',
    healthzPort,
    tlsCertFile: serving.cert,
    tlsPrivateKeyFile: serving.key,
    // Only holders of a certificate from the harness CA (the API server's kubelet client) get in.
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: false },
      x509: { clientCAFile: input.pki.caCert },
    },
    authorization: { mode: 'AlwaysAllow' },
    cgroupDriver: 'cgroupfs',
    cgroupRoot: node.cgroupRoot,
    // These machines run cgroup v1, which 1.36 refuses by default; and they have no swap accounting.
    failCgroupV1: false,
    failSwapOn: false,
    oomScoreAdj: 0,
    containerRuntimeEndpoint: `unix://${node.socket}`,
    podLogsDir: path.join(dir, 'pod-logs'),
    registerWithTaints: [{ key: REAL_NODE_LABEL, value: 'true', effect: 'NoSchedule' }],
    resolvConf: '/etc/resolv.conf',
    evictionHard: {
      'memory.available': '100Mi',
      'nodefs.available': '1%',
      'imagefs.available': '1%',
      'nodefs.inodesFree': '1%',
    },
    imageGCHighThresholdPercent: 100,
    imageGCLowThresholdPercent: 99,
    serializeImagePulls: false,
    rotateCertificates: false,
    serverTLSBootstrap: false,
    syncFrequency: '10s',
    nodeStatusUpdateFrequency: '5s',
    shutdownGracePeriod: '0s',
  };
  const configFile = path.join(dir, 'kubelet-config.json');
  writeFileSync(configFile, JSON.stringify(config, null, 2));
  const kubeletRoot = path.join(dir, 'kubelet');
  node.processes.kubelet = startProcess({
    name: 'kubelet',
    command: bins.kubelet,
    args: [
      `--config=${configFile}`,
      `--kubeconfig=${kubeconfig}`,
      `--root-dir=${kubeletRoot}`,
      `--cert-dir=${path.join(pkiDir, 'kubelet')}`,
      `--hostname-override=${name}`,
      `--node-ip=${node.nodeIp}`,
      `--node-labels=${REAL_NODE_LABEL}=true,type=real`,
      '--v=2',
    ],
    log: path.join(dir, 'logs', 'kubelet.log'),
  });
  input.save(node);
  return node;
}

/** Waits until the real node is Ready and only carries its own taint. */
export async function waitRealNodeReady(node: RealNodeState, kc: k8s.KubeConfig, timeoutMs = 120_000): Promise<void> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await waitFor(
    `real node ${node.name} to be Ready`,
    async () => {
      const n = await core.readNode({ name: node.name });
      const ready = n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
      const taints = (n.spec?.taints ?? []).map((t) => t.key);
      return ready && taints.every((t) => t === REAL_NODE_LABEL);
    },
    node.processes.kubelet,
    timeoutMs,
  );
}

// ---------------------------------------------------------------------------
// Stop and clean up

function taskIds(node: RealNodeState): string[] {
  const res = tryRun('ctr', ['--address', node.socket, '--namespace', 'k8s.io', 'tasks', 'ls', '-q']);
  return res.ok
    ? res.out
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

function containerIds(node: RealNodeState): string[] {
  const res = tryRun('ctr', ['--address', node.socket, '--namespace', 'k8s.io', 'containers', 'ls', '-q']);
  return res.ok
    ? res.out
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)
    : [];
}

/**
 * The network namespaces (bind mounts, e.g. /var/run/netns/cni-…) of the node's
 * sandboxes: from containerd when it answers, and from the OCI bundles of its
 * tasks in its state folder (also after containerd died).
 */
function sandboxNetns(node: RealNodeState): string[] {
  const paths = new Set<string>();
  const base = path.join(node.dir, 'containerd', 'state', 'io.containerd.runtime.v2.task');
  for (const ns of existsSync(base) ? readdirSync(base) : []) {
    for (const id of readdirSync(path.join(base, ns))) {
      try {
        const spec = JSON.parse(readFileSync(path.join(base, ns, id, 'config.json'), 'utf8')) as {
          linux?: { namespaces?: Array<{ type: string; path?: string }> };
        };
        for (const n of spec.linux?.namespaces ?? [])
          if (n.type === 'network' && n.path?.startsWith('/var/run/netns/')) paths.add(n.path);
      } catch {
        // no bundle (yet): skip
      }
    }
  }
  for (const id of containerIds(node)) {
    const info = tryRun('ctr', ['--address', node.socket, '--namespace', 'k8s.io', 'containers', 'info', id]);
    if (!info.ok) continue;
    try {
      const spec = (
        JSON.parse(info.out) as { Spec?: { linux?: { namespaces?: Array<{ type: string; path?: string }> } } }
      ).Spec;
      for (const ns of spec?.linux?.namespaces ?? [])
        if (ns.type === 'network' && ns.path?.startsWith('/var/run/netns/')) paths.add(ns.path);
    } catch {
      // not JSON: skip
    }
  }
  return [...paths];
}

/** PIDs in the node's cgroups (its containers' processes), in any hierarchy. */
function cgroupPids(node: RealNodeState): number[] {
  const pids = new Set<number>();
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    const procs = path.join(d, 'cgroup.procs');
    if (existsSync(procs)) for (const l of readFileSync(procs, 'utf8').split('\n')) if (l.trim()) pids.add(Number(l));
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  for (const mount of cgroupMounts()) walk(path.join(mount, node.cgroupRoot));
  return [...pids];
}

/** Thaws every frozen cgroup of the node (freezer hierarchy). */
function thawCgroups(node: RealNodeState): void {
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    const state = path.join(d, 'freezer.state');
    if (existsSync(state) && readFileSync(state, 'utf8').trim() !== 'THAWED') {
      try {
        writeFileSync(state, 'THAWED');
      } catch {
        // a parent's state wins; it is thawed too
      }
    }
    for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) walk(path.join(d, e.name));
  };
  for (const mount of cgroupMounts()) walk(path.join(mount, node.cgroupRoot));
}

function removeCgroupTree(d: string): boolean {
  if (!existsSync(d)) return true;
  for (const e of readdirSync(d, { withFileTypes: true })) if (e.isDirectory()) removeCgroupTree(path.join(d, e.name));
  return tryRun('rmdir', [d]).ok;
}

/**
 * The shims this node's containerd started: each runs with `-address <this
 * node's socket>`, a path no other process uses. (The containers' processes are
 * found through the node's cgroups.)
 */
export function shimPids(node: Pick<RealNodeState, 'dir' | 'socket'>): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const i = args.indexOf('-address');
      if (i >= 0 && args[i + 1] === node.socket) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** iptables rules in the nat and filter tables that belong to this node: its chain, its bridge, its Pods' subnet (the CNI plugins' chains). */
function removeIptables(node: RealNodeState): string[] {
  const problems: string[] = [];
  const subnet = node.podCidr.replace(/\.0\/24$/, '.');
  for (const table of ['nat', 'filter', 'mangle']) {
    const save = tryRun('iptables-save', ['-t', table]);
    if (!save.ok) continue;
    const lines = save.out.split('\n');
    const chains = lines.filter((l) => l.startsWith(':')).map((l) => l.slice(1).split(' ')[0]!);
    // CNI chains (CNI-…) whose rules all concern this node's Pods.
    const cniChains = chains.filter((c) => {
      if (!c.startsWith('CNI-')) return false;
      const rules = lines.filter((l) => l.startsWith(`-A ${c} `));
      return (
        rules.length > 0 &&
        rules.every((l) => l.includes(subnet) || l.includes(node.bridge) || l.includes(`singleton-node${node.index}`))
      );
    });
    const ours = new Set([...(table === 'nat' ? [node.chain] : []), ...cniChains].filter((c) => chains.includes(c)));
    for (const line of lines) {
      if (!line.startsWith('-A ')) continue;
      const target = / -j (\S+)/.exec(line)?.[1];
      const chain = line.split(' ')[1]!;
      const mentions =
        line.includes(` ${node.bridge} `) ||
        line.includes(subnet) ||
        line.includes(`singleton-node${node.index}`) ||
        line.includes(`singleton real node ${node.index}"`);
      if (ours.has(chain)) continue; // flushed with its chain below
      if ((target && ours.has(target)) || mentions) {
        const args = line
          .slice(3)
          .match(/"[^"]*"|\S+/g)!
          .map((a) => a.replace(/^"|"$/g, ''));
        const res = tryRun('iptables', ['-w', '-t', table, '-D', ...args]);
        if (!res.ok) problems.push(`iptables -t ${table} -D ${line.slice(3)}: ${res.out.trim()}`);
      }
    }
    for (const chain of ours) {
      tryRun('iptables', ['-w', '-t', table, '-F', chain]);
      const res = tryRun('iptables', ['-w', '-t', table, '-X', chain]);
      if (!res.ok) problems.push(`iptables -t ${table} -X ${chain}: ${res.out.trim()}`);
    }
  }
  return problems;
}

export interface StopRealNodeOptions {
  /** A client to drain the node through the API first (skipped when the API server is gone). */
  kubeConfig?: k8s.KubeConfig;
  /** Also delete the Node object (when the control plane keeps running). */
  deleteNode?: boolean;
  log?: (message: string) => void;
}

/**
 * Stops the real node and removes everything it created. Safe to call twice
 * and after a crash; throws at the end, listing what could not be removed.
 */
export async function stopRealNode(node: RealNodeState, options: StopRealNodeOptions = {}): Promise<void> {
  const log = options.log ?? (() => {});
  const problems: string[] = [];
  const kubelet = node.processes.kubelet;
  const containerd = node.processes.containerd;
  const containerdUp = containerd !== undefined && isAlive(containerd.pid);

  // 1. Drain through the API: the kubelet stops each sandbox (CNI DEL, netns removed).
  if (options.kubeConfig && kubelet && isAlive(kubelet.pid) && containerdUp) {
    const core = options.kubeConfig.makeApiClient(k8s.CoreV1Api);
    try {
      await core.patchNode(
        { name: node.name, body: { spec: { unschedulable: true } } },
        k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
      );
      const pods = await core.listPodForAllNamespaces({ fieldSelector: `spec.nodeName=${node.name}` });
      await Promise.all(
        pods.items.map((p) =>
          core
            .deleteNamespacedPod({ name: p.metadata!.name!, namespace: p.metadata!.namespace!, gracePeriodSeconds: 0 })
            .catch(() => undefined),
        ),
      );
      const deadline = Date.now() + 30_000;
      while (Date.now() < deadline && taskIds(node).length > 0) await sleep(250);
      if (options.deleteNode) await core.deleteNode({ name: node.name }).catch(() => undefined);
    } catch (err) {
      log(`draining ${node.name} through the API failed (${String(err)}); cleaning up directly`);
    }
  }

  // 2. kubelet, by PID.
  if (kubelet) await stopProcess(kubelet.pid, 10_000);

  // 3. Whatever still runs: kill its tasks, remember the sandboxes' network namespaces, delete the containers.
  const netns = new Set(sandboxNetns(node));
  if (containerdUp) {
    for (const id of taskIds(node)) {
      tryRun('ctr', [
        '--address',
        node.socket,
        '--namespace',
        'k8s.io',
        'tasks',
        'kill',
        '--all',
        '--signal',
        'SIGKILL',
        id,
      ]);
    }
    const deadline = Date.now() + 10_000;
    for (const id of taskIds(node)) {
      while (
        Date.now() < deadline &&
        !tryRun('ctr', ['--address', node.socket, '--namespace', 'k8s.io', 'tasks', 'delete', '--force', id]).ok
      )
        await sleep(200);
    }
    for (const p of sandboxNetns(node)) netns.add(p);
    for (const id of containerIds(node))
      tryRun('ctr', ['--address', node.socket, '--namespace', 'k8s.io', 'containers', 'delete', id]);
  }

  // 4. containerd, then the shims it left (found by its socket) and the containers' processes (the node's cgroups).
  if (containerd) await stopProcess(containerd.pid, 10_000);
  for (const pid of shimPids(node)) await stopProcess(pid, 2_000);
  thawCgroups(node); // a frozen process (a test's cgroup freezer) cannot die
  for (let round = 0; round < 10 && cgroupPids(node).some(isAlive); round++) {
    for (const pid of cgroupPids(node)) if (isAlive(pid)) process.kill(pid, 'SIGKILL');
    await sleep(100);
  }

  // 5. Mounts: the sandboxes' network namespaces and everything under the node folder.
  // Again until none is left (a mount can be stacked, or made by a shim that was just dying).
  const mounted = () => [...[...netns].filter((p) => mountsUnder(p).length > 0), ...mountsUnder(node.dir)];
  let stale: string[] = [];
  for (let round = 0; round < 20 && mounted().length > 0; round++) {
    if (round > 0) await sleep(250);
    stale = unmountAll(mounted());
  }
  problems.push(...stale.map((p) => `still mounted: ${p}`));
  for (const p of netns) {
    try {
      rmSync(p, { force: true });
    } catch (err) {
      problems.push(`removing ${p}: ${String(err)}`);
    }
  }

  // 6. Network: veths left on the bridge, the bridge, the iptables rules, ip_forward.
  if (linkExists(node.bridge)) {
    const ports = tryRun('ip', ['-o', 'link', 'show', 'master', node.bridge]).out;
    for (const m of ports.matchAll(/^\d+: ([^:@]+)[@:]/gm)) tryRun('ip', ['link', 'delete', m[1]!]);
    const res = tryRun('ip', ['link', 'delete', node.bridge]);
    if (!res.ok) problems.push(`ip link delete ${node.bridge}: ${res.out.trim()}`);
  }
  problems.push(...removeIptables(node));
  const otherNodes = otherRealNodes(node.bridge);
  if (!otherNodes && !node.kubeletChainsBefore) problems.push(...removeKubeletChains());
  if (!otherNodes && existsSync('/proc/sys/net/ipv4/ip_forward')) {
    try {
      writeFileSync('/proc/sys/net/ipv4/ip_forward', node.ipForwardBefore);
    } catch (err) {
      problems.push(`restoring net.ipv4.ip_forward: ${String(err)}`);
    }
  }

  // /var/run/netns, when containerd made it and it is empty again.
  if (!node.netnsDirBefore && !otherNodes && existsSync('/var/run/netns')) tryRun('rmdir', ['/var/run/netns']);
  if (!node.runContainerdBefore && !otherNodes) {
    for (const d of ['/run/containerd/s', '/run/containerd']) if (existsSync(d)) tryRun('rmdir', [d]);
    if (existsSync('/run/containerd'))
      problems.push(`/run/containerd not empty: ${readdirSync('/run/containerd', { recursive: true }).join(', ')}`);
  }

  // 7. cgroups in every hierarchy.
  for (const mount of cgroupMounts()) {
    const cg = path.join(mount, node.cgroupRoot);
    if (!removeCgroupTree(cg)) problems.push(`cgroup not removed: ${cg}`);
  }

  // 8. The node's folder: containerd's root and state, kubelet's root, pod logs, CNI state.
  if (existsSync(node.dir) && mountsUnder(node.dir).length === 0) {
    try {
      rmSync(node.dir, { recursive: true, force: true });
    } catch (err) {
      problems.push(`removing ${node.dir}: ${String(err)}`);
    }
  }
  // Verify: nothing of the node is mounted any more, and its bridge is gone.
  await sleep(200);
  const left = [...[...netns].filter((p) => mountsUnder(p).length > 0), ...mountsUnder(node.dir)];
  problems.push(...left.map((p) => `mounted after cleanup: ${p}`));
  if (linkExists(node.bridge)) problems.push(`interface after cleanup: ${node.bridge}`);
  if (problems.length > 0) throw new Error(`real node ${node.name} not fully cleaned up:\n${problems.join('\n')}`);
  log(`real node ${node.name} stopped and cleaned up`);
}

/** What a real node leaves on the host, to compare before and after (the cleanup test). */
export function hostSnapshot(): {
  links: string[];
  mounts: string[];
  iptables: string[];
  cgroups: string[];
  netns: string[];
} {
  const iptables = ['iptables-save', 'ip6tables-save'].flatMap((bin) =>
    ['nat', 'filter', 'mangle'].flatMap((t) =>
      tryRun(bin, ['-t', t])
        .out.split('\n')
        .filter(
          (l) =>
            l.startsWith('-A') || (l.startsWith(':') && !/^:(PREROUTING|INPUT|OUTPUT|POSTROUTING|FORWARD) /.test(l)),
        )
        .map((l) => `${bin} ${t} ${l.replace(/\[\d+:\d+\]/, '')}`),
    ),
  );
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => l.split(' ')[4]!);
  const links = tryRun('ip', ['-o', 'link', 'show'])
    .out.split('\n')
    .filter(Boolean)
    .map((l) => l.split(':')[1]!.trim().split('@')[0]!);
  const cgroups = cgroupMounts().flatMap((m) =>
    existsSync(m)
      ? readdirSync(m)
          .filter((e) => statSync(path.join(m, e)).isDirectory())
          .map((e) => path.join(m, e))
      : [],
  );
  const netns = existsSync('/var/run/netns') ? readdirSync('/var/run/netns') : [];
  return { links, mounts, iptables, cgroups, netns };
}

/**
 * What a real node left on the host, comparing snapshots taken before it
 * started and after it stopped. Other work on this machine may mount or make
 * cgroups and interfaces meanwhile, so for those only what a node makes counts.
 */
export function hostLeftovers(
  before: ReturnType<typeof hostSnapshot>,
  after: ReturnType<typeof hostSnapshot>,
  clusterDir: string,
): string[] {
  const added = (a: string[], b: string[]) => a.filter((x) => !b.includes(x));
  return [
    ...added(after.iptables, before.iptables).map((r) => `iptables rule or chain added: ${r}`),
    ...added(before.iptables, after.iptables).map((r) => `iptables rule or chain removed: ${r}`),
    ...added(after.netns, before.netns).map((n) => `network namespace: /var/run/netns/${n}`),
    ...added(after.mounts, before.mounts)
      .filter((m) => m.startsWith(clusterDir) || m.includes('netns') || m.includes('k8s.io'))
      .map((m) => `mount: ${m}`),
    ...added(after.links, before.links)
      .filter((l) => /^(so-node|veth)/.test(l))
      .map((l) => `interface: ${l}`),
    ...added(after.cgroups, before.cgroups)
      .filter((c) => /singleton-node|kubepods/.test(c))
      .map((c) => `cgroup: ${c}`),
    ...(existsSync(clusterDir) ? [`folder: ${clusterDir}`] : []),
  ];
}
