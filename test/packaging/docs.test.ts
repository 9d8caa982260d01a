// The documentation, checked offline: the generated reference is what
// scripts/generate-docs.ts produces now, the README stays short and keeps the
// test command .ci/run reads, every relative link and anchor resolves the way
// GitHub renders them, every alert of the chart has its runbook, and every
// condition and Event reason the code can write is explained in
// docs/troubleshooting.md. (The runnable blocks are executed against a real
// control plane by test/integration/docs-snippets.test.ts.)
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { generatedDocs } from '../../scripts/generate-docs.ts';
import { parseAllDocuments } from 'yaml';
import { singletonJobSchema } from '../../src/api/v1alpha1/singletonjob.ts';
import {
  anchors,
  codeBlocks,
  githubSlug,
  links,
  markdownFiles,
  read,
  root,
  runnableBlocks,
} from '../support/markdown.ts';

const checkedFiles = [
  'README.md',
  ...markdownFiles('docs'),
  'charts/singleton-operator/README.md',
  'src/controller/README.md',
  'src/election/README.md',
  'packages/fence/README.md',
  'bench/README.md',
  'test/chaos/README.md',
  'test/controlplane/README.md',
];

describe('the generated reference', () => {
  it.each([...generatedDocs().keys()])('%s is what npm run docs:generate writes', (file) => {
    expect({ file, content: existsSync(path.join(root, file)) ? read(file) : '(missing)' }).toEqual({
      file,
      content: generatedDocs().get(file),
    });
  });

  it('covers every spec field, every flag and every series', () => {
    const docs = generatedDocs();
    for (const field of [
      'spec.schedule',
      'spec.schedules',
      'spec.timeZone',
      'spec.concurrencyPolicy',
      'spec.jobTemplate.spec.backoffLimit',
      'status.currentToken',
    ]) {
      expect(docs.get('docs/reference/singletonjob.md')).toContain(`| \`${field}\` |`);
    }
    for (const flag of ['--lease-namespace', '--watch-namespaces', '--max-concurrent-reconciles'])
      expect(docs.get('docs/reference/operator.md')).toContain(`| \`${flag}\` |`);
    for (const series of [
      'leader_election_master_status',
      'singleton_operator_singletonjob_current_token',
      'singleton_operator_events_dropped_total',
      'singleton_operator_heap_compactions_total',
    ]) {
      expect(docs.get('docs/reference/metrics.md')).toContain(`| \`${series}\` |`);
    }
  });
});

describe('README.md', () => {
  const readme = read('README.md');

  it('is at most 10 kB', () => {
    expect(Buffer.byteLength(readme)).toBeLessThanOrEqual(10_000);
  });

  it('keeps the test command where .ci/run reads it, and the demo command', () => {
    // The same extraction as .ci/run.
    const awk =
      String.raw`/<!-- test-command -->/ { found = 1; next } found && /^` +
      '```' +
      String.raw`/ { if (inblock) exit; inblock = 1; next } inblock { sub(/[[:space:]]+#.*$/, ""); print; exit }`;
    expect(execFileSync('awk', [awk, path.join(root, 'README.md')], { encoding: 'utf8' }).trim()).toBe(
      'npm ci && npm test',
    );
    expect(readme).toContain('```sh\nnpm ci && npm run demo\n```');
    expect(readFileSync(path.join(root, '.ci/run'), 'utf8')).toContain('/<!-- test-command -->/');
  });

  it('shows the printer columns of the CRD in its kubectl get sj output', () => {
    const crd = read('manifests/crds/singletonjobs.singleton.dev.yaml');
    const columns = [...crd.matchAll(/- name: (.+)\n\s+type: \w+\n\s+jsonPath: .+\n(?!\s+priority)/g)].map((m) =>
      m[1]!.toUpperCase(),
    );
    const header = readme.split('\n').find((l) => l.startsWith('NAME '))!;
    expect(header.split(/\s{2,}/)).toEqual(['NAME', ...columns]);
  });
});

describe('links and anchors', () => {
  it.each(checkedFiles)('every relative link and anchor in %s resolves', (file) => {
    const broken: string[] = [];
    for (const { target, line } of links(read(file))) {
      if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
      const [rel, anchor] = target.split('#') as [string, string | undefined];
      const resolved = rel
        ? path.posix.normalize(path.posix.join(path.posix.dirname(file), decodeURIComponent(rel)))
        : file;
      if (!existsSync(path.join(root, resolved))) {
        broken.push(`${file}:${line}: ${target} (no ${resolved})`);
        continue;
      }
      if (anchor !== undefined && resolved.endsWith('.md') && !anchors(read(resolved)).has(anchor))
        broken.push(`${file}:${line}: ${target} (no #${anchor} in ${resolved})`);
      if (anchor !== undefined && statSync(path.join(root, resolved)).isDirectory())
        broken.push(`${file}:${line}: ${target} (an anchor into a folder)`);
    }
    expect(broken).toEqual([]);
  });

  it("follows GitHub's slug rules", () => {
    expect(githubSlug("What a deposed leader's late bytes can and cannot do")).toBe(
      'what-a-deposed-leaders-late-bytes-can-and-cannot-do',
    );
    expect(githubSlug('Fencing tokens: what "higher" means')).toBe('fencing-tokens-what-higher-means');
    expect(githubSlug('`Ready=False` `JobRejected`')).toBe('readyfalse-jobrejected');
    expect(githubSlug('Upgrading from a chart with `crds/`')).toBe('upgrading-from-a-chart-with-crds');
    expect([...anchors('# A\n## B\n## B\n```\n# not a heading\n```\n')]).toEqual(['a', 'b', 'b-1']);
  });

  it('finds the links of a page, not those in code', () => {
    expect(links('[a](x.md) `[b](y.md)`\n```\n[c](z.md)\n```\n![d](img.png "t")').map((l) => l.target)).toEqual([
      'x.md',
      'img.png',
    ]);
  });
});

describe('SingletonJobs in the docs', () => {
  const pages = ['README.md', ...markdownFiles('docs')];
  const examples = pages.flatMap((file) =>
    codeBlocks(read(file))
      .filter((b) => b.lang === 'yaml' && /^kind: SingletonJob$/m.test(b.body))
      .map((b) => ({ where: `${file}:${b.line}`, body: b.body })),
  );

  it('are there (README, getting started, how-to)', () => {
    expect(examples.map((e) => e.where.split(':')[0])).toEqual(
      expect.arrayContaining(['README.md', 'docs/getting-started.md', 'docs/how-to.md']),
    );
  });

  it.each(examples.map((e) => [e.where, e.body]))('%s is a valid SingletonJob', (where, body) => {
    for (const doc of parseAllDocuments(body)) {
      expect({ where, errors: doc.errors.map((e) => e.message) }).toEqual({ where, errors: [] });
      const parsed = singletonJobSchema.safeParse(doc.toJS());
      expect({ where, valid: parsed.success ? true : parsed.error.message }).toEqual({ where, valid: true });
    }
  });
});

describe('runnable blocks', () => {
  it('are shell or YAML, and there are some in getting-started and how-to', () => {
    const blocks = markdownFiles('docs').flatMap((file) =>
      runnableBlocks(read(file)).map((b) => ({ file, lang: b.lang })),
    );
    expect(blocks.filter((b) => !['sh', 'yaml'].includes(b.lang))).toEqual([]);
    expect(blocks.filter((b) => b.file === 'docs/getting-started.md').length).toBeGreaterThanOrEqual(3);
    expect(blocks.filter((b) => b.file === 'docs/how-to.md').length).toBeGreaterThanOrEqual(3);
  });
});

describe('alerts and their runbooks', () => {
  const template = read('charts/singleton-operator/templates/prometheusrule.yaml');
  const alerts = [...template.matchAll(/^\s+- alert: (\w+)$/gm)].map((m) => m[1]!);
  const operations = anchors(read('docs/operations.md'));

  it('every alert carries runbook_url to its own section of docs/operations.md', () => {
    expect(alerts.length).toBeGreaterThanOrEqual(8);
    const values = read('charts/singleton-operator/values.yaml');
    expect(values).toMatch(
      /^ {2}runbookBaseURL: https:\/\/github\.com\/singleton-dev\/singleton-operator\/blob\/main\/docs\/operations\.md$/m,
    );
    const blocks = template.split(/^\s+- alert: /m).slice(1);
    for (const block of blocks) {
      const alert = block.split('\n')[0]!.trim();
      const url = /runbook_url: \{\{ printf "%s#([\w-]+)" \$pr\.runbookBaseURL \| quote \}\}/.exec(block)?.[1];
      expect({ alert, section: url }).toEqual({ alert, section: alert.toLowerCase() });
      expect({ alert, documented: operations.has(alert.toLowerCase()) }).toEqual({ alert, documented: true });
    }
  });
});

/** Reasons the code writes into a condition or an Event, found by reading src/ (tests excluded). */
function reasonsInCode(): Map<string, string> {
  const found = new Map<string, string>();
  const add = (reason: string, file: string) => void (found.has(reason) || found.set(reason, file));
  const walk = (dir: string) => {
    for (const name of readdirSync(path.join(root, dir))) {
      const rel = path.posix.join(dir, name);
      if (statSync(path.join(root, rel)).isDirectory()) walk(rel);
      else if (name.endsWith('.ts') && !name.endsWith('.test.ts')) scan(rel, read(rel));
    }
  };
  const scan = (file: string, text: string) => {
    // reason: 'X' (also a union type: reason: 'X' | 'Y'; acceptTemplate's `how` is TemplateAccepted's reason)
    for (const m of text.matchAll(/\b(?:reason|how)\??:\s*((?:'[A-Z][A-Za-z]+'(?:\s*\|\s*)?)+)/g))
      for (const r of m[1]!.matchAll(/'([A-Z][A-Za-z]+)'/g)) add(r[1]!, file);
    // emit(sj, 'Warning', 'X', …) and announceOnce(sj, id, 'Normal', 'X', …), over line breaks
    for (const m of text.matchAll(/'(?:Normal|Warning)',\s*'([A-Z][A-Za-z]+)'/g)) add(m[1]!, file);
    // the Event actions table: Reason: 'Action'
    const actions = /const ACTIONS[^=]*=\s*\{([^}]*)\}/.exec(text)?.[1];
    for (const m of actions?.matchAll(/^\s*([A-Z][A-Za-z]+):/gm) ?? []) add(m[1]!, file);
    // container waiting reasons a RunStalled condition carries
    const stuck = /const STUCK = new Set\(\[([^\]]*)\]\)/.exec(text)?.[1];
    for (const m of stuck?.matchAll(/'([A-Za-z]+)'/g) ?? []) add(m[1]!, file);
    // named reasons: LEADER_ELECTION_REASON (the Lease's Event), CREATE_FAILED (RunStalled's reason)
    for (const m of text.matchAll(/const [A-Z_]*(?:REASON|FAILED)[A-Z_]* = '([A-Z][A-Za-z]+)'/g)) add(m[1]!, file);
  };
  walk('src');
  return found;
}

/** Reasons in the code that no user meets: the Status reasons of API errors the operator builds or declares for itself. */
const NOT_USER_FACING = new Set([
  'FieldValueInvalid',
  'FieldValueForbidden',
  'FieldValueRequired',
  'FieldValueDuplicate',
  'Invalid',
]);

describe('docs/troubleshooting.md', () => {
  const doc = read('docs/troubleshooting.md');
  const reasons = reasonsInCode();

  it('reads the reasons out of the code (the scan finds each kind)', () => {
    for (const r of [
      'RunStarted',
      'RunStalled',
      'InvalidTimeZone',
      'TakenOver',
      'ErrImageNeverPull',
      'LeaderElection',
      'PodNotCreated',
      'Scheduled',
      'DryRunAccepted',
      'JobCreateFailed',
    ])
      expect({ r, found: reasons.has(r) }).toEqual({ r, found: true });
    expect(reasons.size).toBeGreaterThan(40);
  });

  it('explains every condition and Event reason the code can write', () => {
    const missing = [...reasons]
      .filter(([r]) => !NOT_USER_FACING.has(r) && !doc.includes(`\`${r}\``))
      .map(([r, file]) => `${r} (${file})`);
    expect(missing).toEqual([]);
  });
});

describe('one narration per mechanism', () => {
  const everyMarkdown = [...new Set([...checkedFiles, ...markdownFiles('charts'), ...markdownFiles('packages/fence')])];

  it('tells the token rule and the store contract in docs/concepts.md alone', () => {
    const tellers = (phrase: RegExp) => everyMarkdown.filter((file) => phrase.test(read(file)));
    expect(tellers(/max\(status\.currentToken \+ 1/)).toEqual(['docs/concepts.md']);
    expect(tellers(/Accept a write only if its token is ≥/)).toEqual(['docs/concepts.md']);
    for (const a of ['the-start-protocol', 'the-token-rule', 'the-store-contract'])
      expect(anchors(read('docs/concepts.md')).has(a)).toBe(true);
  });

  it.each([
    ['README.md', ['docs/concepts.md#the-store-contract']],
    ['charts/singleton-operator/README.md', ['../../docs/concepts.md#the-start-protocol']],
    [
      'src/controller/README.md',
      [
        '../../docs/concepts.md#the-start-protocol',
        '../../docs/concepts.md#the-token-rule',
        '../../docs/concepts.md#the-store-contract',
      ],
    ],
    ['src/election/README.md', ['../../docs/concepts.md#the-token-rule']],
    ['packages/fence/README.md', ['../../docs/concepts.md#the-store-contract']],
    ['docs/kueue.md', ['concepts.md#the-start-protocol']],
  ])('%s links to the narration instead of telling it again', (file, targets) => {
    const linked = links(read(file)).map((l) => l.target);
    for (const target of targets)
      expect({ file, target, linked: linked.includes(target) }).toEqual({ file, target, linked: true });
  });
});
