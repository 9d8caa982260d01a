// Locates the control-plane binaries. Order of precedence, per binary:
//   1. TEST_ASSET_<NAME> (envtest convention, e.g. TEST_ASSET_KUBE_APISERVER)
//   2. KUBEBUILDER_ASSETS/<name> (envtest convention, a folder of binaries)
//   3. the version-keyed cache filled by test/tools/build.sh (built on demand)
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const toolsDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'tools');

export interface Binaries {
  etcd: string;
  kubeApiserver: string;
  kubeControllerManager: string;
  kubeScheduler: string;
  kwok: string;
  /** Folder holding kwok's stage files (kustomize/stage of the kwok module). */
  kwokStages: string;
}

export function cacheDir(): string {
  return (
    process.env.SINGLETON_CACHE_DIR ??
    path.join(process.env.XDG_CACHE_HOME ?? path.join(homedir(), '.cache'), 'singleton-operator')
  );
}

/** Reads a module's version from the committed go.mod of its tools module. */
export function pinnedVersion(toolsModule: string, modulePath: string): string {
  const gomod = readFileSync(path.join(toolsDir, toolsModule, 'go.mod'), 'utf8');
  const escaped = modulePath.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const match = new RegExp(`^\\s*(?:require\\s+)?${escaped}\\s+(v\\S+)`, 'm').exec(gomod);
  if (!match?.[1]) throw new Error(`cannot find ${modulePath} in ${toolsModule}/go.mod`);
  return match[1];
}

function fromEnv(envName: string, fileName: string): string | undefined {
  const explicit = process.env[envName];
  if (explicit) {
    if (!existsSync(explicit)) throw new Error(`${envName}=${explicit} does not exist`);
    return explicit;
  }
  const assets = process.env.KUBEBUILDER_ASSETS;
  if (assets && existsSync(path.join(assets, fileName))) return path.join(assets, fileName);
  return undefined;
}

function cached(component: string, version: string, fileName: string): string {
  return path.join(cacheDir(), 'bin', `${component}-${version}`, fileName);
}

/** Runs test/tools/build.sh for the given components, streaming its progress. */
export function buildBinaries(components: string[]): void {
  execFileSync('bash', [path.join(toolsDir, 'build.sh'), ...components], { stdio: ['ignore', 'inherit', 'inherit'] });
}

/**
 * Returns every binary the local control plane needs, building missing ones
 * from the Go module proxy unless `build` is false (then it throws, naming
 * what is missing and how to get it).
 */
export function resolveBinaries(build = true): Binaries {
  const k8s = pinnedVersion('k8s', 'k8s.io/kubernetes');
  const etcdV = pinnedVersion('etcd', 'go.etcd.io/etcd/server/v3');
  const kwokV = pinnedVersion('kwok', 'sigs.k8s.io/kwok');
  const want = (): Binaries => ({
    etcd: fromEnv('TEST_ASSET_ETCD', 'etcd') ?? cached('etcd', etcdV, 'etcd'),
    kubeApiserver:
      fromEnv('TEST_ASSET_KUBE_APISERVER', 'kube-apiserver') ?? cached('kubernetes', k8s, 'kube-apiserver'),
    kubeControllerManager:
      fromEnv('TEST_ASSET_KUBE_CONTROLLER_MANAGER', 'kube-controller-manager') ??
      cached('kubernetes', k8s, 'kube-controller-manager'),
    kubeScheduler:
      fromEnv('TEST_ASSET_KUBE_SCHEDULER', 'kube-scheduler') ?? cached('kubernetes', k8s, 'kube-scheduler'),
    kwok: fromEnv('TEST_ASSET_KWOK', 'kwok') ?? cached('kwok', kwokV, 'kwok'),
    kwokStages: process.env.TEST_ASSET_KWOK_STAGES ?? cached('kwok', kwokV, 'stages'),
  });
  let bins = want();
  const missing = (b: Binaries) => Object.entries(b).filter(([, p]) => !existsSync(p));
  if (missing(bins).length > 0 && build) {
    const components = new Set<string>();
    for (const [key] of missing(bins)) {
      if (key === 'etcd') components.add('etcd');
      else if (key.startsWith('kwok')) components.add('kwok');
      else components.add('k8s');
    }
    buildBinaries([...components]);
    bins = want();
  }
  const still = missing(bins);
  if (still.length > 0) {
    throw new Error(
      `control-plane binaries missing: ${still.map(([k, p]) => `${k} (${p})`).join(', ')}; ` +
        'run `npm run controlplane:build`, or set KUBEBUILDER_ASSETS / TEST_ASSET_* to binaries you have',
    );
  }
  return bins;
}

/** helm, built into the cache by test/tools/build.sh (or HELM_BIN). */
export function resolveHelm(build = true): string {
  if (process.env.HELM_BIN) return process.env.HELM_BIN;
  const helm = cached('helm', pinnedVersion('helm', 'helm.sh/helm/v4'), 'helm');
  if (!existsSync(helm) && build) buildBinaries(['helm']);
  if (!existsSync(helm)) throw new Error(`helm missing at ${helm}; run \`bash test/tools/build.sh helm\``);
  return helm;
}
