// `npm run demo`: the whole product on one machine, in one command.
//
// Without KUBECONFIG it starts the local control plane in .cluster/ (or reuses
// the one `npm run cluster:up` left running); with KUBECONFIG it uses that
// cluster. Then it installs the CRD and the chart's ServiceAccount and RBAC
// (from manifests/, i.e. the rendered chart), runs three operator replicas as
// local processes authenticated as that ServiceAccount (TokenRequest), applies
// a SingletonJob due every 15 seconds, and shows the leader, the runs and their
// fencing tokens as they happen. A replica that exits is restarted after a few
// seconds, as its Deployment would — so `kill <leader pid>` shows a graceful
// handover and `kill -9 <leader pid>` a crash failover. Ctrl-C stops the
// replicas (by PID) and the control plane if this command started it.
import { closeSync, existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parseAllDocuments, stringify } from 'yaml';
import { ControlPlane } from '../controlplane/controlplane.ts';
import { isAlive, sleep } from '../controlplane/process.ts';
import { Keys } from '../../src/api/v1alpha1/singletonjob.ts';
import {
  kubectl,
  root,
  serviceAccountToken,
  startReplica,
  stopReplica,
  writeTokenKubeconfig,
  type Replica,
} from './replicas.ts';

const OPERATOR_NAMESPACE = 'singleton-system';
const SERVICE_ACCOUNT = 'singleton-operator';
const LEASE = 'singleton-operator';
const DEMO_NAMESPACE = 'singleton-demo';
const DEMO_JOB = 'heartbeat';
const REPLICAS = 3;
const RESTART_AFTER_MS = 3000;

const say = (line: string) => process.stdout.write(`${line}\n`);
const replicas: Array<Replica | undefined> = [];

/** The SingletonJob of the demo: due every 15 s; kwok keeps each Pod running for 5 s. */
const demoJob = {
  apiVersion: 'singleton.dev/v1alpha1',
  kind: 'SingletonJob',
  metadata: { name: DEMO_JOB, namespace: DEMO_NAMESPACE },
  spec: {
    schedule: '*/15 * * * * *',
    concurrencyPolicy: 'Forbid',
    startingDeadlineSeconds: 10,
    successfulJobsHistoryLimit: 5,
    jobTemplate: {
      spec: {
        template: {
          metadata: {
            annotations: {
              'pod-complete.stage.kwok.x-k8s.io/delay': '5s',
              'pod-complete.stage.kwok.x-k8s.io/jitter-delay': '5s',
            },
          },
          spec: {
            restartPolicy: 'Never',
            containers: [
              {
                name: 'work',
                image: 'busybox:1.37',
                command: ['sh', '-c', 'echo "run with fencing token $SINGLETON_FENCING_TOKEN"; sleep 5'],
              },
            ],
          },
        },
      },
    },
  },
};

interface Cluster {
  kubeconfig: string;
  workDir: string;
  /** Set when this command started the control plane (and must stop it). */
  started?: ControlPlane;
}

async function cluster(): Promise<Cluster> {
  if (process.env.KUBECONFIG) {
    say(`Using the cluster of KUBECONFIG=${process.env.KUBECONFIG}`);
    return { kubeconfig: process.env.KUBECONFIG, workDir: mkdtempSync(path.join(tmpdir(), 'singleton-demo-')) };
  }
  const dir = path.join(root, '.cluster');
  if (existsSync(ControlPlane.stateFile(dir))) {
    const cp = ControlPlane.attach(dir);
    const api = cp.state.processes['kube-apiserver'];
    if (api && isAlive(api.pid)) {
      say(`Reusing the local control plane at ${cp.state.server} (.cluster/; stop it with npm run cluster:down)`);
      return { kubeconfig: cp.state.kubeconfig, workDir: path.join(dir, 'demo') };
    }
    await cp.stop();
  }
  say('Starting a local control plane in .cluster/ (etcd, kube-apiserver, controller-manager, scheduler, kwok)…');
  const cp = await ControlPlane.start({ dir, log: (m) => say(`  ${m}`) });
  return { kubeconfig: cp.state.kubeconfig, workDir: path.join(dir, 'demo'), started: cp };
}

/** The CRD, the chart's Namespace, ServiceAccount and RBAC from the rendered chart — not its Deployment. */
function install(kubeconfig: string): void {
  say('Installing the CRD and the chart’s ServiceAccount and RBAC (manifests/crds, manifests/install.yaml)…');
  kubectl(kubeconfig, ['apply', '--server-side', '-f', path.join(root, 'manifests/crds')]);
  kubectl(kubeconfig, ['wait', '--for=condition=Established', 'crd/singletonjobs.singleton.dev', '--timeout=30s']);
  const wanted = new Set(['Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding']);
  const docs = parseAllDocuments(readFileSync(path.join(root, 'manifests/install.yaml'), 'utf8'))
    .map((d) => d.toJS() as { kind?: string } | null)
    .filter((d) => d?.kind && wanted.has(d.kind));
  kubectl(kubeconfig, ['apply', '--server-side', '-f', '-'], docs.map((d) => stringify(d)).join('---\n'));
}

function applyDemoJob(kubeconfig: string): void {
  kubectl(
    kubeconfig,
    ['apply', '--server-side', '-f', '-'],
    stringify({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: DEMO_NAMESPACE } }),
  );
  kubectl(kubeconfig, ['apply', '--server-side', '--force-conflicts', '-f', '-'], stringify(demoJob));
}

/** New JSON log lines of a replica since the last call. */
class LogTail {
  private offset = 0;
  private readonly file: string;
  constructor(file: string) {
    this.file = file;
  }
  lines(): Array<Record<string, unknown>> {
    if (!existsSync(this.file)) return [];
    const size = statSync(this.file).size;
    if (size <= this.offset) return [];
    const fd = openSync(this.file, 'r');
    const buf = Buffer.alloc(size - this.offset);
    readSync(fd, buf, 0, buf.length, this.offset);
    closeSync(fd);
    const text = buf.toString('utf8');
    const complete = text.lastIndexOf('\n') + 1;
    this.offset += Buffer.byteLength(text.slice(0, complete));
    return text
      .slice(0, complete)
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => {
        try {
          return JSON.parse(l) as Record<string, unknown>;
        } catch {
          return {};
        }
      });
  }
}

const INTERESTING = new Set([
  'Started leading',
  'Stopped leading',
  'Observed a new leader',
  'Shutting down: stopping guarded work, then releasing the Lease',
  'Released the Lease',
]);

function ago(iso: string | Date | undefined): string {
  if (!iso) return '-';
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  return s < 60 ? `${s.toFixed(1)}s ago` : `${Math.round(s / 60)}m ago`;
}

function table(rows: string[][]): string[] {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => `  ${r.map((c, i) => c.padEnd(widths[i]!)).join('  ')}`.trimEnd());
}

async function main(): Promise<void> {
  const c = await cluster();
  const admin = new k8s.KubeConfig();
  admin.loadFromFile(c.kubeconfig);
  install(c.kubeconfig);

  const token = await serviceAccountToken(admin, OPERATOR_NAMESPACE, SERVICE_ACCOUNT, 24 * 3600);
  const operatorKubeconfig = writeTokenKubeconfig(
    path.join(c.workDir, 'operator.kubeconfig'),
    admin,
    `system:serviceaccount:${OPERATOR_NAMESPACE}:${SERVICE_ACCOUNT}`,
    token,
  );
  const logDir = path.join(c.workDir, 'logs');
  mkdirSync(logDir, { recursive: true });
  say(
    `Starting ${REPLICAS} operator replicas as system:serviceaccount:${OPERATOR_NAMESPACE}:${SERVICE_ACCOUNT} (logs in ${logDir.startsWith(`${process.cwd()}/`) ? path.relative(process.cwd(), logDir) : logDir}/)…`,
  );

  const tails: LogTail[] = [];
  const exitedAt = new Map<number, number>();
  const start = async (i: number) => {
    replicas[i] = await startReplica({
      name: `operator-${i}`,
      kubeconfig: operatorKubeconfig,
      namespace: OPERATOR_NAMESPACE,
      leaseName: LEASE,
      logDir,
    });
    tails[i] ??= new LogTail(replicas[i]!.log);
  };
  for (let i = 0; i < REPLICAS; i++) await start(i);
  applyDemoJob(c.kubeconfig);

  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    say('\nStopping the replicas (SIGTERM; the leader releases the Lease)…');
    await Promise.all(replicas.map((r) => (r ? stopReplica(r) : undefined)));
    if (c.started) {
      say('Stopping the local control plane…');
      await c.started.stop();
    } else {
      say(
        `Left the cluster running; the demo SingletonJob is ${DEMO_NAMESPACE}/${DEMO_JOB} (kubectl delete ns ${DEMO_NAMESPACE}).`,
      );
    }
    say('Done.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());

  const coordination = admin.makeApiClient(k8s.CoordinationV1Api);
  const batch = admin.makeApiClient(k8s.BatchV1Api);
  const custom = admin.makeApiClient(k8s.CustomObjectsApi);
  const core = admin.makeApiClient(k8s.CoreV1Api);
  const history: string[] = [];
  const tty = process.stdout.isTTY;
  let lastFrame = '';

  while (!stopping) {
    for (let i = 0; i < REPLICAS; i++) {
      const r = replicas[i];
      if (r && !isAlive(r.process.pid)) {
        if (!exitedAt.has(i)) {
          exitedAt.set(i, Date.now());
          history.push(
            `${new Date().toISOString().slice(11, 23)}  ${r.name} (pid ${r.process.pid}) exited; restarting it in ${RESTART_AFTER_MS / 1000}s`,
          );
        } else if (Date.now() - exitedAt.get(i)! > RESTART_AFTER_MS) {
          exitedAt.delete(i);
          await start(i);
        }
      }
      for (const line of tails[i]?.lines() ?? []) {
        const msg = String(line.msg ?? '');
        if (!INTERESTING.has(msg) && !/^(Started run|Run .* (succeeded|failed))/.test(msg)) continue;
        // Run messages already name their token and term; leadership messages get theirs added.
        const extra = INTERESTING.has(msg)
          ? ['term', 'leader', 'reason']
              .filter((k) => line[k] !== undefined)
              .map((k) => `${k}=${String(line[k])}`)
              .join(' ')
          : '';
        history.push(`${String(line.time ?? '').slice(11, 23)}  operator-${i}: ${msg}${extra ? ` (${extra})` : ''}`);
      }
    }
    history.splice(0, Math.max(0, history.length - 8));

    const frame: string[] = [];
    try {
      const lease = await coordination
        .readNamespacedLease({ name: LEASE, namespace: OPERATOR_NAMESPACE })
        .catch(() => undefined);
      const holder = lease?.spec?.holderIdentity ?? '';
      frame.push(
        `Lease ${OPERATOR_NAMESPACE}/${LEASE}: holder ${holder || '(none)'}, transitions ${lease?.spec?.leaseTransitions ?? 0}, renewed ${ago(lease?.spec?.renewTime)}`,
      );
      frame.push('');
      frame.push(
        ...table([
          ['REPLICA', 'PID', 'ROLE', 'HEALTH'],
          ...replicas.map((r, i) => {
            if (!r || !isAlive(r.process.pid)) return [`operator-${i}`, '-', 'exited', 'restarting'];
            return [
              r.name,
              String(r.process.pid),
              holder.startsWith(`${r.name}_`) ? 'LEADER' : 'standby',
              `http://127.0.0.1:${r.port}/metrics`,
            ];
          }),
        ]),
      );
      const sj = (await custom
        .getNamespacedCustomObject({
          group: 'singleton.dev',
          version: 'v1alpha1',
          plural: 'singletonjobs',
          namespace: DEMO_NAMESPACE,
          name: DEMO_JOB,
        })
        .catch(() => undefined)) as
        | {
            spec?: { schedule?: string };
            status?: { currentToken?: number; leaderTerm?: number; activeRun?: { name: string; token: number } };
          }
        | undefined;
      frame.push('');
      frame.push(
        `SingletonJob ${DEMO_NAMESPACE}/${DEMO_JOB} (schedule "${sj?.spec?.schedule}"): current token ${sj?.status?.currentToken ?? '-'}, leader term ${sj?.status?.leaderTerm ?? '-'}, active ${sj?.status?.activeRun ? `${sj.status.activeRun.name} (token ${sj.status.activeRun.token})` : '-'}`,
      );
      const jobs = await batch.listNamespacedJob({ namespace: DEMO_NAMESPACE, labelSelector: Keys.ownerUid });
      const pods = await core.listNamespacedPod({ namespace: DEMO_NAMESPACE, labelSelector: Keys.ownerUid });
      const runs = jobs.items
        .sort(
          (a, b) =>
            Number(b.metadata?.annotations?.[Keys.token] ?? 0) - Number(a.metadata?.annotations?.[Keys.token] ?? 0),
        )
        .slice(0, 6)
        .map((j) => {
          const cond = j.status?.conditions?.find(
            (x) => (x.type === 'Complete' || x.type === 'Failed') && x.status === 'True',
          );
          const running = pods.items.filter(
            (p) =>
              p.metadata?.labels?.[Keys.run] === j.metadata?.name &&
              !['Succeeded', 'Failed'].includes(p.status?.phase ?? ''),
          ).length;
          return [
            j.metadata?.name ?? '',
            j.metadata?.annotations?.[Keys.token] ?? '',
            j.metadata?.annotations?.[Keys.term] ?? '',
            j.metadata?.annotations?.[Keys.slot] ?? '',
            cond?.type ?? (running ? `Running (${running} pod)` : 'Pending'),
            ago(j.metadata?.creationTimestamp),
          ];
        });
      frame.push(...table([['JOB (RUN)', 'TOKEN', 'TERM', 'SLOT', 'STATUS', 'CREATED'], ...runs]));
    } catch (err) {
      frame.push(`(cannot read the cluster: ${(err as Error).message})`);
    }
    frame.push('', 'Operator events:', ...(history.length ? history.map((h) => `  ${h}`) : ['  (none yet)']));
    const leaderPid = replicas.find((r) => r && isAlive(r.process.pid) && frame[0]?.includes(`holder ${r.name}_`))
      ?.process.pid;
    frame.push(
      '',
      `Try: kill ${leaderPid ?? '<leader pid>'}  (graceful handover)   kill -9 ${leaderPid ?? '<leader pid>'}  (crash failover after the lease expires)`,
      `     KUBECONFIG=${c.kubeconfig} kubectl get sj -n ${DEMO_NAMESPACE} -w`,
      `     KUBECONFIG=${c.kubeconfig} kubectl describe sj ${DEMO_JOB} -n ${DEMO_NAMESPACE}`,
      `     KUBECONFIG=${c.kubeconfig} PATH=$PWD/bin:$PATH kubectl singleton -w`,
      'Ctrl-C stops everything.',
    );
    const text = frame.join('\n');
    if (tty)
      process.stdout.write(
        `\x1b[H\x1b[2J singleton-operator demo — ${new Date().toISOString().slice(11, 19)} UTC\n\n${text}\n`,
      );
    else if (text.replace(/\d+(\.\d+)?s ago|\d+m ago/g, '') !== lastFrame) {
      say(`\n--- ${new Date().toISOString()}\n${text}`);
      lastFrame = text.replace(/\d+(\.\d+)?s ago|\d+m ago/g, '');
    }
    await sleep(1000);
  }
}

main().catch(async (err: unknown) => {
  process.stderr.write(`demo failed: ${err instanceof Error ? err.message : String(err)}\n`);
  await Promise.all(replicas.map((r) => (r ? stopReplica(r) : undefined)));
  process.exit(1);
});
