// The krew plugin manifest (plugins/singleton.yaml) and how a release fills it
// in (scripts/krew-package.sh, run by the release workflow's krew job): the
// archive holds the plugin as committed, the manifest names its real sha256.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Platform {
  selector: { matchLabels: Record<string, string> };
  uri: string;
  sha256: string;
  files: { from: string; to: string }[];
  bin: string;
}
interface KrewPlugin {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
  spec: { version: string; homepage: string; shortDescription: string; description: string; platforms: Platform[] };
}

describe('krew plugin manifest', () => {
  it('describes one platform-independent archive of bin/kubectl-singleton, with placeholders a release fills in', () => {
    const plugin = parse(read('plugins/singleton.yaml')) as KrewPlugin;
    expect(plugin).toMatchObject({
      apiVersion: 'krew.googlecontainertools.github.com/v1alpha2',
      kind: 'Plugin',
      metadata: { name: 'singleton' },
    });
    expect(plugin.spec.shortDescription.length).toBeLessThanOrEqual(60);
    expect(plugin.spec.platforms).toEqual([
      {
        selector: { matchLabels: { os: 'linux' } },
        uri: 'https://github.com/singleton-dev/singleton-operator/releases/download/v0.0.0/kubectl-singleton.tar.gz',
        sha256: '0'.repeat(64),
        files: [{ from: 'kubectl-singleton', to: '.' }],
        bin: 'kubectl-singleton',
      },
    ]);
  });

  it('is filled in by scripts/krew-package.sh with the version, the release URL and the sha256 of a reproducible archive', () => {
    const version = (JSON.parse(read('package.json')) as { version: string }).version;
    const out = mkdtempSync(path.join(tmpdir(), 'krew-'));
    try {
      const pack = (dir: string) =>
        spawnSync('bash', [path.join(root, 'scripts/krew-package.sh'), version, dir, 'acme/singleton-operator'], {
          encoding: 'utf8',
        });
      const res = pack(out);
      expect({ status: res.status, stderr: res.stderr }).toEqual({ status: 0, stderr: '' });
      const archive = readFileSync(path.join(out, 'kubectl-singleton.tar.gz'));
      const sha = createHash('sha256').update(archive).digest('hex');
      const plugin = parse(readFileSync(path.join(out, 'singleton.yaml'), 'utf8')) as KrewPlugin;
      expect(plugin.spec.version).toBe(`v${version}`);
      expect(plugin.spec.homepage).toBe('https://github.com/acme/singleton-operator');
      expect(plugin.spec.platforms[0]).toMatchObject({
        uri: `https://github.com/acme/singleton-operator/releases/download/v${version}/kubectl-singleton.tar.gz`,
        sha256: sha,
      });
      // The archive: the committed script alone, executable.
      const listing = spawnSync('tar', ['-tvzf', path.join(out, 'kubectl-singleton.tar.gz')], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n');
      expect(listing).toHaveLength(1);
      expect(listing[0]).toMatch(/^-rwxr-xr-x 0\/0 .* kubectl-singleton$/);
      const content = spawnSync('tar', ['-xzOf', path.join(out, 'kubectl-singleton.tar.gz'), 'kubectl-singleton'], {
        encoding: 'utf8',
      }).stdout;
      expect(content).toBe(read('bin/kubectl-singleton'));
      // Reproducible: the same bytes again (the sha256 can be checked by anyone from the tag).
      expect(pack(path.join(out, 'again')).status).toBe(0);
      expect(readFileSync(path.join(out, 'again', 'kubectl-singleton.tar.gz')).equals(archive)).toBe(true);
      expect(
        spawnSync('bash', [path.join(root, 'scripts/krew-package.sh'), 'latest', path.join(out, 'x')], {
          encoding: 'utf8',
        }).status,
      ).toBe(2);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  it('is packaged and attached to the GitHub release by the release workflow', () => {
    const release = parse(read('.github/workflows/release.yml')) as {
      jobs: Record<string, { needs?: string[]; steps?: { run?: string }[] }>;
    };
    const krew = release.jobs.krew;
    expect(krew?.needs).toEqual(['ci', 'version']);
    expect(
      krew?.steps?.some((s) => s.run === 'bash scripts/krew-package.sh "$VERSION" dist "$GITHUB_REPOSITORY"'),
    ).toBe(true);
    expect(release.jobs['github-release']?.needs).toContain('krew');
  });
});
