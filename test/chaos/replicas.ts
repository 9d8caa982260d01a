// The operator replicas under test: separate OS processes running
// `src/main.ts` on this Node (process.execPath), each with its own client
// certificate (so the audit log names it), its own health port and its own
// chain of fault proxies to the API server:
//   replica → TCP proxy (partition/delay) → HTTP fault proxy (429/5xx, TLS terminated) → kube-apiserver
// A replica that exits is restarted after a second, as a Deployment would;
// exits the harness did not cause are recorded (the checker calls them crashes).
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync, type WriteStream } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as k8s from '@kubernetes/client-node';
import { writeKubeconfig } from '../controlplane/pki.ts';
import { issueClientCert } from '../controlplane/pki.ts';
import { freePort, probe } from '../controlplane/process.ts';
import type { ControlPlane } from '../controlplane/controlplane.ts';
import { TcpProxy } from './tcp-proxy.ts';
import { HttpFaultProxy, issueServingCert } from './http-fault-proxy.ts';
import type { ExitRecord } from './history.ts';
import type { Rng } from './rng.ts';
import { FENCES_ONLY_ENV, HOOK_ENV } from '../../src/operator/chaos-hook.ts';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const MAIN = path.join(repoRoot, 'src', 'main.ts');
/** The controller's test hook line (src/operator/chaos-hook.ts). */
export { HOOK_MESSAGE } from '../../src/operator/chaos-hook.ts';
const FAKETIME_LIBS = [
  '/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1',
  '/usr/lib/faketime/libfaketimeMT.so.1',
];

export function faketimeLibrary(): string | undefined {
  return FAKETIME_LIBS.find((f) => existsSync(f));
}

export interface ReplicaTimings {
  leaseDurationMs: number;
  renewDeadlineMs: number;
  retryPeriodMs: number;
}

export interface ReplicaOptions {
  cp: ControlPlane;
  dir: string;
  leaseNamespace: string;
  leaseName: string;
  /** --identity; the replica's name unless a duplicate identity is the point. */
  identity?: string;
  watchNamespace: string;
  timings: ReplicaTimings;
  pauseAfterReserveMs: number;
  rng: Rng;
  log: (line: string) => void;
  onExit: (exit: ExitRecord) => void;
  /** The no-election mode (src/operator/chaos-hook.ts): each leadership lasts a random time in this range (ms). */
  fencesOnly?: [number, number];
  /** Called with each log line of a replica (the hook watcher reacts synchronously). */
  onLine?: (replica: Replica, line: string) => void;
}

export class Replica {
  readonly name: string;
  readonly tcp: TcpProxy;
  readonly http: HttpFaultProxy;
  readonly kubeconfig: string;
  readonly logFile: string;
  readonly httpPort: number;
  child: ChildProcess | undefined;
  /** Set while the harness holds the process with SIGSTOP. */
  stopped = false;
  /** Wall-clock offset (faketime) the current process runs with, in seconds. */
  skewSeconds = 0;
  private expectExit = false;
  private restartTimer: NodeJS.Timeout | undefined;
  private shuttingDown = false;
  private log: WriteStream;
  private readonly options: ReplicaOptions;
  restarts = 0;

  private constructor(
    name: string,
    tcp: TcpProxy,
    http: HttpFaultProxy,
    kubeconfig: string,
    httpPort: number,
    options: ReplicaOptions,
  ) {
    this.name = name;
    this.tcp = tcp;
    this.http = http;
    this.kubeconfig = kubeconfig;
    this.httpPort = httpPort;
    this.options = options;
    this.logFile = path.join(options.dir, `${name}.log`);
    this.log = createWriteStream(this.logFile, { flags: 'a' });
  }

  static async create(name: string, options: ReplicaOptions): Promise<Replica> {
    const { cp } = options;
    const cert = issueClientCert(cp.state.pki, name);
    const apiPort = Number(new URL(cp.state.server).port);
    const http = await HttpFaultProxy.start(
      issueServingCert(cp.state.pki, `${name}-proxy`),
      {
        url: cp.state.server,
        ca: readFileSync(cp.state.pki.caCert),
        cert: readFileSync(cert.cert),
        key: readFileSync(cert.key),
      },
      options.rng,
    );
    void apiPort;
    const tcp = await TcpProxy.start(http.port);
    const kubeconfig = path.join(options.dir, `${name}.kubeconfig`);
    writeKubeconfig(kubeconfig, `https://127.0.0.1:${tcp.port}`, cp.state.pki.caCert, { name, clientCert: cert });
    return new Replica(name, tcp, http, kubeconfig, await freePort(), options);
  }

  get pid(): number | undefined {
    return this.child?.exitCode === null && this.child.signalCode === null ? this.child.pid : undefined;
  }

  get running(): boolean {
    return this.pid !== undefined;
  }

  start(skewSeconds = 0): void {
    const { timings } = this.options;
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      [HOOK_ENV]: String(this.options.pauseAfterReserveMs),
      KUBECONFIG: this.kubeconfig,
    };
    if (this.options.fencesOnly) env[FENCES_ONLY_ENV] = this.options.fencesOnly.join('-');
    delete env.NODE_OPTIONS; // jest's --experimental-vm-modules is not for the operator
    if (skewSeconds !== 0) {
      const lib = faketimeLibrary();
      if (!lib) throw new Error('faketime is not installed (apt-get install -y faketime)');
      env.LD_PRELOAD = lib;
      env.FAKETIME = `${skewSeconds >= 0 ? '+' : ''}${skewSeconds}s`;
      // Only the wall clock is skewed: performance.now() must stay real, as on a skewed node.
      env.FAKETIME_DONT_FAKE_MONOTONIC = '1';
      env.FAKETIME_NO_CACHE = '1';
    }
    this.skewSeconds = skewSeconds;
    const args = [
      MAIN,
      `--kubeconfig=${this.kubeconfig}`,
      `--identity=${this.options.identity ?? this.name}`,
      `--pod-name=${this.name}`,
      `--lease-namespace=${this.options.leaseNamespace}`,
      `--lease-name=${this.options.leaseName}`,
      `--lease-duration=${timings.leaseDurationMs}ms`,
      `--renew-deadline=${timings.renewDeadlineMs}ms`,
      `--retry-period=${timings.retryPeriodMs}ms`,
      `--watch-namespaces=${this.options.watchNamespace}`,
      '--http-host=127.0.0.1',
      `--http-port=${this.httpPort}`,
      '--log-level=info',
    ];
    this.log.write(
      `--- ${new Date().toISOString()} starting ${this.name}${skewSeconds ? ` with the wall clock skewed by ${skewSeconds} s` : ''}\n`,
    );
    const child = spawn(process.execPath, args, { cwd: repoRoot, env, stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.stopped = false;
    this.expectExit = false;
    let buffered = '';
    const onData = (chunk: Buffer) => {
      this.log.write(chunk);
      buffered += chunk.toString('utf8');
      let nl: number;
      while ((nl = buffered.indexOf('\n')) >= 0) {
        const line = buffered.slice(0, nl);
        buffered = buffered.slice(nl + 1);
        this.options.onLine?.(this, line);
      }
    };
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => this.log.write(chunk));
    child.on('exit', (code, signal) => {
      if (this.child !== child) return;
      const expected = this.expectExit || this.shuttingDown;
      const record: ExitRecord = { replica: this.name, at: Date.now(), code, signal, expected };
      if (!expected) record.logTail = this.logTail(15);
      this.options.onExit(record);
      this.options.log(`${this.name} exited (code ${code}, signal ${signal})${expected ? '' : ' ON ITS OWN'}`);
      this.child = undefined;
      if (!this.shuttingDown && !expected) {
        this.restarts++;
        this.restartTimer = setTimeout(() => this.start(0), 1000);
      }
    });
  }

  logTail(lines: number): string {
    try {
      return readFileSync(this.logFile, 'utf8')
        .split('\n')
        .slice(-lines - 1)
        .join('\n');
    } catch {
      return '';
    }
  }

  signal(sig: NodeJS.Signals): void {
    const pid = this.pid;
    if (pid === undefined) return;
    if (sig === 'SIGSTOP') this.stopped = true;
    if (sig === 'SIGCONT') this.stopped = false;
    process.kill(pid, sig);
  }

  /** SIGKILL (a crash the harness caused); resolves once the process is gone. */
  async kill(): Promise<void> {
    await this.terminate('SIGKILL');
  }

  /** Stops the process as the harness's own act (SIGTERM, SIGKILL after 10 s). */
  async terminate(sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.child;
    if (!child || !this.running) return;
    this.expectExit = true;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    if (this.stopped) process.kill(child.pid as number, 'SIGCONT');
    this.stopped = false;
    process.kill(child.pid as number, sig);
    const timer = setTimeout(
      () => child.pid !== undefined && this.running && process.kill(child.pid, 'SIGKILL'),
      10_000,
    );
    await exited;
    clearTimeout(timer);
  }

  async restart(skewSeconds = 0, sig: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    await this.terminate(sig);
    this.start(skewSeconds);
  }

  async health(): Promise<{ live: boolean; ready: boolean }> {
    if (!this.running || this.stopped) return { live: false, ready: false };
    const [live, ready] = await Promise.all([
      probe(`http://127.0.0.1:${this.httpPort}/livez`, undefined, 1000),
      probe(`http://127.0.0.1:${this.httpPort}/readyz`, undefined, 1000),
    ]);
    return { live: live.status === 200, ready: ready.status === 200 };
  }

  async shutdown(): Promise<void> {
    this.shuttingDown = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.tcp.heal();
    this.http.heal();
    await this.terminate('SIGTERM');
    await this.tcp.close();
    await this.http.close();
    await new Promise<void>((resolve) => this.log.end(() => resolve()));
  }
}

/** Who holds the Lease right now (admin read, straight to the API server). */
export async function readLease(
  kc: k8s.KubeConfig,
  namespace: string,
  name: string,
): Promise<{ holder?: string; resourceVersion?: string } | undefined> {
  try {
    const lease = await kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ namespace, name });
    return { holder: lease.spec?.holderIdentity ?? undefined, resourceVersion: lease.metadata?.resourceVersion };
  } catch {
    return undefined;
  }
}
