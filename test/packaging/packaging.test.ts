// What can be checked about the image without a Docker engine: the Dockerfile's
// stages, user and entrypoint, the build context, and that the compiled
// program only needs production dependencies.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  base: string;
  name: string | undefined;
  platform: string | undefined;
  instructions: Instruction[];
}

/** Parses a Dockerfile into stages (comments dropped, continuation lines joined). */
function parseDockerfile(text: string): Stage[] {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const stages: Stage[] = [];
  for (const line of lines) {
    const [, op = '', args = ''] = /^(\S+)\s*(.*)$/.exec(line) ?? [];
    if (op.toUpperCase() === 'FROM') {
      const [, platform, base = '', name] = /^(?:--platform=(\S+)\s+)?(\S+)(?:\s+AS\s+(\S+))?$/i.exec(args) ?? [];
      stages.push({ base, name, platform, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push({ op: op.toUpperCase(), args });
    }
  }
  return stages;
}

const stages = parseDockerfile(read('Dockerfile'));
const runtime = stages.at(-1) as Stage;
const ops = (stage: Stage, op: string) => stage.instructions.filter((i) => i.op === op).map((i) => i.args);
const pkg = JSON.parse(read('package.json')) as {
  type: string;
  scripts: Record<string, string>;
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
};

describe('Dockerfile', () => {
  it('is multi-stage on a pinned Node 24 slim base', () => {
    expect(stages.length).toBeGreaterThanOrEqual(2);
    for (const stage of stages) expect(stage.base).toMatch(/^node:24(\.\d+)*-[a-z]+-slim$/);
  });

  it("runs the build stage on the builder's platform and the runtime stage on the target's (multi-arch without emulation)", () => {
    expect(stages.slice(0, -1).map((s) => s.platform)).toEqual(stages.slice(0, -1).map(() => '$BUILDPLATFORM'));
    expect(runtime.platform).toBeUndefined();
  });

  it('trusts an extra certificate authority in `npm ci` only when the optional secret extra-ca is given', () => {
    const ci = stages.flatMap((s) => ops(s, 'RUN')).find((r) => /\bnpm ci\b/.test(r)) ?? '';
    expect(ci).toMatch(/^--mount=type=secret,id=extra-ca\s/);
    expect(ci).toContain('if [ -s /run/secrets/extra-ca ]; then export NODE_EXTRA_CA_CERTS=/run/secrets/extra-ca; fi;');
    expect(ops(runtime, 'ENV').join(' ')).not.toContain('NODE_EXTRA_CA_CERTS');
  });

  it('builds with the dev dependencies in a build stage, with `npm ci` from the lock file', () => {
    const build = stages.find((s) => ops(s, 'RUN').some((r) => /npm run build/.test(r)));
    expect(build).toBeDefined();
    expect(build).not.toBe(runtime);
    expect(ops(build as Stage, 'RUN').some((r) => /\bnpm ci\b/.test(r))).toBe(true);
  });

  it('puts only dist/ (the self-contained bundle) and package.json into the final stage', () => {
    const copies = ops(runtime, 'COPY');
    expect(ops(runtime, 'ADD')).toEqual([]);
    expect(ops(runtime, 'RUN')).toEqual([]);
    for (const copy of copies) expect(copy).toMatch(/^--from=\S+\s/);
    const sources = copies.map((c) => /^--from=\S+\s+(\S+)\s+\S+$/.exec(c)?.[1] ?? '');
    expect(sources.map((s) => path.basename(s)).sort()).toEqual(['dist', 'package.json']);
    expect(pkg.scripts.build).toBe('node scripts/bundle.ts');
  });

  it('runs as a numeric non-root user', () => {
    const users = ops(runtime, 'USER');
    expect(users).toHaveLength(1);
    const [uid, gid] = (users[0] as string).split(':');
    expect(uid).toMatch(/^\d+$/);
    expect(Number(uid)).toBeGreaterThan(0);
    if (gid !== undefined) expect(Number(gid)).toBeGreaterThan(0);
    const chartUser = /runAsUser: (\d+)/.exec(read('charts/singleton-operator/values.yaml'))?.[1];
    expect(chartUser).toBe(uid);
  });

  it('starts node as PID 1 in exec form on the compiled entry point', () => {
    const entry = [...ops(runtime, 'ENTRYPOINT'), ...ops(runtime, 'CMD')];
    expect(entry).toHaveLength(1);
    const argv = JSON.parse(entry[0] as string) as string[];
    expect(argv[0]).toBe('node');
    expect(argv.at(-1)).toBe('dist/main.js');
    expect(existsSync(path.join(root, 'src/main.ts'))).toBe(true);
    expect(read('scripts/bundle.ts')).toContain("outfile = path.join(outdir, 'main.js')");
    expect(pkg.type).toBe('module');
  });
});

describe('.dockerignore', () => {
  const ignored = read('.dockerignore')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  it.each(['node_modules', 'dist', '.git', '.cluster', 'test', 'bench'])(
    'keeps %s out of the build context',
    (entry) => {
      expect(ignored).toContain(entry);
    },
  );
  // .dockerignore semantics for plain paths: the last pattern that matches the
  // path or one of its parent folders decides; `!` re-includes.
  const isIgnored = (file: string) => {
    let result = false;
    for (const pattern of ignored) {
      const negated = pattern.startsWith('!');
      const p = negated ? pattern.slice(1) : pattern;
      const matches = p.startsWith('*.') ? file.endsWith(p.slice(1)) : file === p || file.startsWith(`${p}/`);
      if (matches) result = !negated;
    }
    return result;
  };
  it('keeps what the build copies', () => {
    const copied = stages.flatMap((s) => ops(s, 'COPY').filter((c) => !c.startsWith('--from')));
    const sources = copied.flatMap((c) => c.split(/\s+/).slice(0, -1)).map((s) => s.replace(/^\.\//, ''));
    expect(sources).toContain('scripts/bundle.ts');
    for (const source of sources) expect({ source, ignored: isIgnored(source) }).toEqual({ source, ignored: false });
    expect(isIgnored('scripts/generate-manifests.ts')).toBe(true);
  });
});

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return sourceFiles(file);
    return /\.ts$/.test(name) && !/\.(test|fixture)\.ts$/.test(name) ? [file] : [];
  });
}

describe('production dependencies', () => {
  it('cover every package the compiled program imports (dev dependencies are not in the image)', () => {
    const builtins = new Set(builtinModules);
    const missing: string[] = [];
    for (const file of sourceFiles(path.join(root, 'src'))) {
      const text = readFileSync(file, 'utf8');
      for (const [, spec = ''] of text.matchAll(/^\s*import\s+(?!type\b)[^'"]*?from\s+['"]([^'"]+)['"]/gm)) {
        if (spec.startsWith('.') || spec.startsWith('node:') || builtins.has(spec)) continue;
        const name = spec.startsWith('@') ? spec.split('/').slice(0, 2).join('/') : (spec.split('/')[0] as string);
        if (!(name in pkg.dependencies)) missing.push(`${path.relative(root, file)} imports ${name}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('does not ship build or test tools as runtime dependencies', () => {
    for (const tool of ['typescript', 'esbuild', 'jest', 'ts-jest', 'node', '@types/node'])
      expect(pkg.dependencies).not.toHaveProperty(tool);
  });
});
