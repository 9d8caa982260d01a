// Builds the shipped artifact: one ES module, dist/main.js, bundled from
// src/main.ts by esbuild (type-stripped, tree-shaken).
//
// Why a bundle: an unbundled start loads every module of every dependency,
// and V8 keeps each module's source text in the heap. @kubernetes/client-node
// alone is ~2,700 generated model files and an API class for every group
// (its index and its config.js import all of them): ~40 MiB of heap before the
// first object. The bundle keeps what the operator reaches.
//
// Benchmarks and the end-to-end test run this bundle with the node flags of
// the Dockerfile's ENTRYPOINT and the environment of its runtime stage
// (shippedImage), so they measure what ships.
//
//   node scripts/bundle.ts [--outdir=dist] [--analyze]
import { copyFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { analyzeMetafile, build, type Plugin } from 'esbuild';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/**
 * client-node's modules only declare classes and constants; it does not say so
 * in its package.json ("sideEffects"), so without this esbuild keeps every
 * generated API group the index re-exports.
 */
const clientNodeHasNoSideEffects: Plugin = {
  name: 'client-node-side-effect-free',
  setup(b) {
    b.onResolve({ filter: /.*/ }, async (args) => {
      if (args.pluginData === 'resolved') return undefined;
      if (!args.importer.includes('/@kubernetes/client-node/') && !args.path.startsWith('@kubernetes/client-node'))
        return undefined;
      const r = await b.resolve(args.path, {
        kind: args.kind,
        importer: args.importer,
        resolveDir: args.resolveDir,
        pluginData: 'resolved',
      });
      if (r.errors.length > 0) return { errors: r.errors };
      return r.path.includes('/@kubernetes/client-node/dist/') ? { ...r, sideEffects: false } : r;
    });
  },
};

/** Bundles into outdir/main.js and returns its path. */
export async function bundle(outdir = path.join(root, 'dist'), analyze = false): Promise<string> {
  const outfile = path.join(outdir, 'main.js');
  const result = await build({
    entryPoints: [path.join(root, 'src', 'main.ts')],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node24',
    // CommonJS dependencies call require(); an ES module has none of its own.
    banner: {
      js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);",
    },
    minifySyntax: true,
    minifyWhitespace: true,
    keepNames: true, // readable stack traces and error names
    sourcemap: 'linked',
    legalComments: 'linked',
    metafile: true,
    logLevel: 'warning',
    plugins: [clientNodeHasNoSideEffects],
  });
  if (analyze) process.stdout.write(await analyzeMetafile(result.metafile, { verbose: false }));
  return outfile;
}

/** The node flags of the image's ENTRYPOINT (between "node" and "dist/main.js"). */
export function imageNodeFlags(): string[] {
  const m = /^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(runtimeStage());
  const argv = m ? (JSON.parse(m[1]!) as string[]) : [];
  if (argv[0] !== 'node' || argv.at(-1) !== 'dist/main.js')
    throw new Error(`the Dockerfile's ENTRYPOINT is not ["node", …, "dist/main.js"]: ${m?.[1] ?? 'none'}`);
  return argv.slice(1, -1);
}

/** The environment the image's runtime stage sets (its `ENV NAME=value …` lines; unquoted values only). */
export function imageEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of runtimeStage().split('\n')) {
    const m = /^ENV\s+(.*)$/.exec(line.trim());
    if (!m) continue;
    for (const pair of m[1]!.trim().split(/\s+/)) {
      const kv = /^([A-Za-z_][A-Za-z0-9_]*)=([^"'\s\\]*)$/.exec(pair);
      if (!kv)
        throw new Error(
          `the Dockerfile's runtime stage has an ENV this reader does not understand (write NAME=value, unquoted): ${pair}`,
        );
      env[kv[1]!] = kv[2]!;
    }
  }
  return env;
}

/** The Dockerfile from its last FROM on (the stage the image runs). */
function runtimeStage(): string {
  const dockerfile = readFileSync(path.join(root, 'Dockerfile'), 'utf8');
  const from = [...dockerfile.matchAll(/^FROM\s/gm)].at(-1)?.index;
  if (from === undefined) throw new Error('the Dockerfile has no FROM');
  return dockerfile.slice(from);
}

export interface ShippedImage {
  /** node <these> — the ENTRYPOINT's flags and the bundle's path. */
  nodeArgs: string[];
  /** The runtime stage's ENV (NODE_ENV, malloc tuning…). */
  env: Record<string, string>;
}

/**
 * Lays the image's /app out in dir (dist/ from the bundle, package.json) and
 * returns how the image's ENTRYPOINT would run it. dir should be outside the
 * checkout: with no node_modules above it, a module the bundle failed to
 * include fails the run instead of resolving from here.
 */
export async function shippedImage(dir: string): Promise<ShippedImage> {
  const main = path.join(dir, 'dist', 'main.js');
  if (!existsSync(main)) {
    mkdirSync(dir, { recursive: true });
    await bundle(path.join(dir, 'dist'));
    copyFileSync(path.join(root, 'package.json'), path.join(dir, 'package.json'));
  }
  return { nodeArgs: [...imageNodeFlags(), main], env: imageEnv() };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const outdir = process.argv.find((a) => a.startsWith('--outdir='))?.slice('--outdir='.length);
  const out = await bundle(outdir ? path.resolve(outdir) : undefined, process.argv.includes('--analyze'));
  process.stdout.write(`bundled ${path.relative(process.cwd(), out)}\n`);
}
