// The image the Dockerfile builds, built for real (scripts/image.ts: podman and
// a stand-in base, no Docker Hub) and run: what it contains, the user, entry
// point and environment it runs with, and the archive the real node imports.
// The first build takes ~1.5 minutes; afterwards it comes from the cache.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { buildImage, imagePodman, RUN_LIMITS, type BuiltImage } from '../../scripts/image.ts';
import { imageEnv, imageNodeFlags } from '../../scripts/bundle.ts';

const missing = ['podman', 'runc', 'debootstrap'].filter(
  (tool) => spawnSync('bash', ['-c', `command -v ${tool} || test -x /usr/sbin/${tool}`]).status !== 0,
);
const canBuild = missing.length === 0 && process.getuid?.() === 0;
const describeWithPodman = canBuild ? describe : describe.skip;
if (!canBuild)
  console.warn(
    `image tests skipped: ${missing.length ? `${missing.join(', ')} not found; install them with: apt-get install -y podman runc debootstrap` : 'building the image needs root'}`,
  );

describeWithPodman('the operator image', () => {
  let image: BuiltImage;
  const podman = () => imagePodman();
  const inImage = (args: string[]) => {
    const p = podman();
    const res = spawnSync(
      p.cmd,
      [...p.args, 'run', '--rm', '--network', 'none', '--read-only', ...RUN_LIMITS, ...args],
      { encoding: 'utf8', timeout: 60_000 },
    );
    return { code: res.status, stdout: res.stdout, stderr: res.stderr };
  };

  beforeAll(async () => {
    image = await buildImage({ log: () => {} });
  }, 600_000);

  it('is built once per content and then comes from the cache', async () => {
    expect(image.ref).toBe(`localhost/singleton-operator:${image.tag}`);
    expect(image.key.startsWith(image.tag)).toBe(true);
    const again = await buildImage({ log: () => {} });
    expect({ ref: again.ref, archive: again.archive, id: again.id, cached: again.cached }).toEqual({
      ref: image.ref,
      archive: image.archive,
      id: image.id,
      cached: true,
    });
    expect(again.seconds).toBeLessThan(5);
  });

  it('is exported as a docker-archive named by its ref, for `ctr images import`', () => {
    expect(existsSync(image.archive)).toBe(true);
    const manifest = spawnSync('tar', ['-xOf', image.archive, 'manifest.json'], { encoding: 'utf8' });
    expect(manifest.status).toBe(0);
    const [entry] = JSON.parse(manifest.stdout) as Array<{ RepoTags: string[]; Config: string }>;
    expect(entry?.RepoTags).toEqual([image.ref]);
    expect(`sha256:${entry?.Config.replace(/^.*?([0-9a-f]{64}).*$/, '$1')}`).toBe(image.id);
  });

  it("runs node with the ENTRYPOINT's flags and the runtime stage's environment as UID 65532, no CA or build input left in it", () => {
    const p = podman();
    const res = spawnSync(p.cmd, [...p.args, 'image', 'inspect', '--format', '{{json .Config}}', image.ref], {
      encoding: 'utf8',
    });
    const config = JSON.parse(res.stdout) as { User: string; Entrypoint: string[]; Env: string[]; WorkingDir: string };
    expect(config.User).toBe('65532:65532');
    expect(config.WorkingDir).toBe('/app');
    expect(config.Entrypoint).toEqual(['node', ...imageNodeFlags(), 'dist/main.js']);
    for (const [name, value] of Object.entries(imageEnv())) expect(config.Env).toContain(`${name}=${value}`);
    expect(config.Env.join(' ')).not.toMatch(/NODE_EXTRA_CA_CERTS|npm_config/);
  });

  it('holds Node 24, dist/ and package.json under /app and no node_modules', () => {
    const res = inImage([
      '--entrypoint',
      'sh',
      image.ref,
      '-c',
      'id -u; node --version; ls -A /app; find /app -name node_modules | wc -l; test -e /run/secrets/extra-ca && echo leaked || true',
    ]);
    expect(res.stderr).toBe('');
    const [uid, version, ...rest] = res.stdout.trim().split('\n');
    expect(uid).toBe('65532');
    expect(version).toMatch(/^v24\./);
    expect(rest).toEqual(['dist', 'package.json', '0']);
  });

  it('starts the operator on a read-only root filesystem: --help exits 0, no cluster exits 2', () => {
    const help = inImage([image.ref, '--help']);
    expect({ code: help.code, stderr: help.stderr }).toEqual({ code: 0, stderr: '' });
    expect(help.stdout).toContain('Usage: singleton-operator');
    const noCluster = inImage(['--env', 'POD_NAMESPACE=ops', '--env', 'KUBECONFIG=/nonexistent', image.ref]);
    expect(noCluster.code).toBe(2);
  });
});
