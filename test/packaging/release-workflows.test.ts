// The release pipeline (.github/workflows): actionlint finds nothing (it also
// runs shellcheck on every `run:` script when shellcheck is installed), and the
// workflows publish where the chart and the README say the image and chart live.
// actionlint is built from the Go module proxy by test/tools/build.sh (the
// version in test/tools/actionlint/go.mod) and cached outside the checkout.
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
const workflowsDir = path.join(root, '.github/workflows');

const actionlintVersion = /^\s*github\.com\/rhysd\/actionlint (v\S+)/m.exec(read('test/tools/actionlint/go.mod'))?.[1];
const cacheDir =
  process.env.SINGLETON_CACHE_DIR ??
  path.join(process.env.XDG_CACHE_HOME ?? path.join(os.homedir(), '.cache'), 'singleton-operator');
const actionlint = path.join(cacheDir, 'bin', `actionlint-${actionlintVersion}`, 'actionlint');
const itWithActionlint = existsSync(actionlint) ? it : it.skip;
if (!existsSync(actionlint))
  console.warn(`actionlint check skipped: ${actionlint} not found; build it with: bash test/tools/build.sh actionlint`);

interface Step {
  uses?: string;
  run?: string;
  with?: Record<string, unknown>;
}
interface Job {
  uses?: string;
  needs?: string | string[];
  permissions?: Record<string, string>;
  env?: Record<string, string>;
  steps?: Step[];
}
interface Workflow {
  on: Record<string, unknown>;
  permissions?: Record<string, string>;
  jobs: Record<string, Job>;
}
const workflow = (name: string) => parse(read(`.github/workflows/${name}`)) as Workflow;
const steps = (w: Workflow) => Object.values(w.jobs).flatMap((j) => j.steps ?? []);
const owner = /^home: https:\/\/github\.com\/([^/]+)\/singleton-operator$/m.exec(
  read('charts/singleton-operator/Chart.yaml'),
)?.[1];

describe('release workflows', () => {
  itWithActionlint('pass actionlint without findings', () => {
    const res = spawnSync(actionlint, ['-no-color', '-oneline'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
    expect({ status: res.status, findings: `${res.stdout}${res.stderr}`.trim().split('\n').filter(Boolean) }).toEqual({
      status: 0,
      findings: [],
    });
  });

  it('pin every action to a release tag (no branches, no floating refs)', () => {
    const refs = readdirSync(workflowsDir).flatMap((f) => steps(workflow(f)).flatMap((s) => (s.uses ? [s.uses] : [])));
    expect(refs.length).toBeGreaterThan(5);
    for (const ref of refs.filter((r) => !r.startsWith('./')))
      expect(ref).toMatch(/^[\w.-]+\/[\w./-]+@v\d+(\.\d+){0,2}$/);
  });

  it('run .ci/run on pull requests and pushes, and release only what passed it', () => {
    const ci = workflow('ci.yml');
    expect(Object.keys(ci.on).sort()).toEqual(['pull_request', 'push', 'workflow_call']);
    expect(steps(ci).some((s) => /\bbash \.ci\/run$/.test(s.run ?? ''))).toBe(true);
    const release = workflow('release.yml');
    expect(release.on).toEqual({ push: { tags: ['v*'] } });
    expect(release.jobs.ci?.uses).toBe('./.github/workflows/ci.yml');
    expect(release.jobs.image?.needs).toContain('ci');
    expect(release.permissions).toEqual({ contents: 'read' });
  });

  it('build the image for amd64 and arm64 with an SBOM, push it to GHCR and sign it keylessly', () => {
    const image = workflow('release.yml').jobs.image as Job;
    expect(image.env?.IMAGE).toBe('ghcr.io/${{ needs.version.outputs.owner }}/singleton-operator');
    const build = image.steps?.find((s) => s.uses?.startsWith('docker/build-push-action@'));
    expect(build?.with).toMatchObject({ platforms: 'linux/amd64,linux/arm64', push: true, sbom: true });
    expect(image.permissions).toMatchObject({ packages: 'write', 'id-token': 'write' });
    const scripts = (image.steps ?? []).map((s) => s.run ?? '').join('\n');
    expect(scripts).toContain('cosign sign --yes "$IMAGE@$DIGEST"');
    expect(scripts).toContain('cosign attest --yes --type spdxjson');
    expect(image.steps?.some((s) => s.uses?.startsWith('anchore/sbom-action@'))).toBe(true);
  });

  it('push the chart as an OCI artifact next to the image and sign it keylessly', () => {
    const chart = workflow('release.yml').jobs.chart as Job;
    expect(chart.env?.CHARTS).toBe('ghcr.io/${{ needs.version.outputs.owner }}/charts');
    expect(chart.permissions).toMatchObject({ packages: 'write', 'id-token': 'write' });
    const scripts = (chart.steps ?? []).map((s) => s.run ?? '').join('\n');
    expect(scripts).toContain('helm push "dist/singleton-operator-$VERSION.tgz" "oci://$CHARTS"');
    expect(scripts).toContain('cosign sign --yes "$CHARTS/singleton-operator@$digest"');
  });

  it('publish where the chart and the README say the image and the chart live', () => {
    expect(owner).toBeDefined();
    expect(read('charts/singleton-operator/values.yaml')).toMatch(
      new RegExp(`^  repository: ghcr\\.io/${owner}/singleton-operator$`, 'm'),
    );
    const readme = read('README.md');
    expect(readme).toContain(`ghcr.io/${owner}/singleton-operator`);
    expect(readme).toContain(`oci://ghcr.io/${owner}/charts/singleton-operator`);
  });
});
