// The chart's PrometheusRule and Grafana dashboard: every alert passes its own
// `promtool test rules` cases (test/prometheus/alerts.test.yaml) as the chart
// renders it, and every series an alert or a panel queries is one the operator
// exports. promtool and helm are built from the Go module proxy by
// test/tools/build.sh (versions in test/tools/*/go.mod) and cached outside the
// checkout; without them the promtool check is skipped, saying so.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Registry } from 'prom-client';
import { parseAllDocuments, stringify } from 'yaml';
import { electionMetrics } from '../../src/election/metrics.ts';
import { controllerMetrics } from '../../src/controller/metrics.ts';
import { objectMetrics } from '../../src/controller/object-metrics.ts';
import { restClientMetrics } from '../../src/kube/client-metrics.ts';
import { createRegistry, selfFencedWrites } from '../../src/metrics/registry.ts';
import { cacheDir, pinnedVersion } from '../controlplane/binaries.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const chartDir = path.join(root, 'charts', 'singleton-operator');
const helm =
  process.env.HELM_BIN ?? path.join(cacheDir(), 'bin', `helm-${pinnedVersion('helm', 'helm.sh/helm/v4')}`, 'helm');
const promtool = path.join(
  cacheDir(),
  'bin',
  `promtool-${pinnedVersion('promtool', 'github.com/prometheus/prometheus')}`,
  'promtool',
);
const missing = [helm, promtool].filter((bin) => !existsSync(bin));
if (missing.length > 0)
  console.warn(
    `promtool check skipped: ${missing.join(', ')} not found; build with: bash test/tools/build.sh helm promtool`,
  );
const itWithTools = missing.length === 0 ? it : it.skip;
const itWithHelm = existsSync(helm) ? it : it.skip;

interface RuleGroup {
  name: string;
  rules: { alert?: string; record?: string; expr: string }[];
}

function renderRules(): RuleGroup[] {
  const out = execFileSync(
    helm,
    [
      'template',
      'singleton-operator',
      chartDir,
      '-n',
      'singleton-system',
      '--kube-version',
      '1.36.3',
      '--set',
      'prometheusRule.enabled=true',
      '--show-only',
      'templates/prometheusrule.yaml',
    ],
    { encoding: 'utf8' },
  );
  const rule = parseAllDocuments(out)
    .map((d) => d.toJS() as { kind?: string; spec: { groups: RuleGroup[] } })
    .find((d) => d?.kind === 'PrometheusRule');
  return rule!.spec.groups;
}

/** The metric names the operator registers (a leader's full set). */
function exportedNames(): Set<string> {
  const registry: Registry = createRegistry({ version: 'test', identity: 'test' });
  selfFencedWrites(registry);
  controllerMetrics(registry);
  objectMetrics(registry, { list: () => [], exporting: () => true });
  restClientMetrics(registry);
  electionMetrics(registry, 'lease');
  return new Set(registry.getMetricsAsArray().map((m) => m.name));
}

/** Our metric names an expression uses (histogram series mapped to their metric). */
function namesIn(expr: string): string[] {
  return [
    ...expr.matchAll(
      /\b(singleton_operator_\w+|controller_runtime_\w+|workqueue_\w+|rest_client_\w+|leader_election_\w+)/g,
    ),
  ].map((m) => m[1]!.replace(/_(bucket|sum|count)$/, ''));
}

const alertNames = [
  'SingletonOperatorNoLeader',
  'SingletonOperatorLeadershipFlapping',
  'SingletonOperatorAPIErrors',
  'SingletonOperatorReconcileErrors',
  'SingletonJobMissedSchedule',
  'SingletonJobSlotSkipped',
  'SingletonJobConsecutiveFailures',
  'SingletonJobStalled',
];

describe('alerts', () => {
  const cases = readFileSync(path.join(root, 'test/prometheus/alerts.test.yaml'), 'utf8');

  it('each alert has cases in test/prometheus/alerts.test.yaml', () => {
    for (const name of alertNames)
      expect({ name, tested: cases.includes(`alertname: ${name}`) }).toEqual({ name, tested: true });
  });

  itWithTools('pass `promtool test rules` as the chart renders them, and query only exported series', () => {
    const groups = renderRules();
    expect(groups.flatMap((g) => g.rules.map((r) => r.alert)).sort()).toEqual([...alertNames].sort());
    const exported = exportedNames();
    for (const rule of groups.flatMap((g) => g.rules)) {
      for (const name of namesIn(rule.expr))
        expect({ alert: rule.alert, name, exported: exported.has(name) }).toEqual({
          alert: rule.alert,
          name,
          exported: true,
        });
    }
    const dir = mkdtempSync(path.join(tmpdir(), 'alerts-'));
    try {
      writeFileSync(path.join(dir, 'rules.yaml'), stringify({ groups }));
      copyFileSync(path.join(root, 'test/prometheus/alerts.test.yaml'), path.join(dir, 'alerts.test.yaml'));
      const check = spawnSync(promtool, ['check', 'rules', path.join(dir, 'rules.yaml')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect({ status: check.status, out: check.stdout + check.stderr }).toEqual({
        status: 0,
        out: expect.stringContaining('SUCCESS'),
      });
      const test = spawnSync(promtool, ['test', 'rules', path.join(dir, 'alerts.test.yaml')], {
        encoding: 'utf8',
        timeout: 60_000,
      });
      expect({ status: test.status, out: test.stdout + test.stderr }).toEqual({
        status: 0,
        out: expect.stringContaining('SUCCESS'),
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('Grafana dashboard', () => {
  const dashboard = JSON.parse(readFileSync(path.join(chartDir, 'dashboards/singleton-operator.json'), 'utf8')) as {
    uid: string;
    panels: { title: string; targets: { expr: string }[] }[];
  };

  it('queries only series the operator exports', () => {
    const exported = exportedNames();
    const used = dashboard.panels.flatMap((p) =>
      p.targets.flatMap((t) => namesIn(t.expr).map((name) => ({ panel: p.title, name }))),
    );
    expect(used.length).toBeGreaterThan(10);
    expect(used.filter((u) => !exported.has(u.name))).toEqual([]);
  });

  itWithHelm('ships in a ConfigMap with the sidecar label when enabled', () => {
    const out = execFileSync(
      helm,
      [
        'template',
        'x',
        chartDir,
        '--kube-version',
        '1.36.3',
        '--set',
        'grafanaDashboard.enabled=true',
        '--show-only',
        'templates/grafana-dashboard.yaml',
      ],
      {
        encoding: 'utf8',
      },
    );
    const cm = parseAllDocuments(out).map(
      (d) => d.toJS() as { metadata: { labels: Record<string, string> }; data: Record<string, string> },
    )[0]!;
    expect(cm.metadata.labels['grafana_dashboard']).toBe('1');
    expect((JSON.parse(cm.data['singleton-operator.json']!) as { uid: string }).uid).toBe(dashboard.uid);
  });
});
