// No import circles in src/: a module graph with a cycle has no order in
// which each file can be read (or changed) on its own, and ESM evaluates one
// of the files before its imports are ready. Type-only imports count too —
// they are erased at runtime, but a type circle is the same tangle of
// responsibilities. Tests (*.test.ts) are leaves and are not walked.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const src = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src');

function sourceFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) => {
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(file);
    return entry.name.endsWith('.ts') && !entry.name.endsWith('.test.ts') ? [file] : [];
  });
}

/** Relative imports of each file (static, type-only, re-exports and dynamic import()), as absolute paths. */
function importGraph(files: string[]): Map<string, string[]> {
  const graph = new Map<string, string[]>();
  for (const file of files) {
    const { importedFiles } = ts.preProcessFile(readFileSync(file, 'utf8'), true, true);
    graph.set(
      file,
      importedFiles
        .map((i) => i.fileName)
        .filter((name) => name.startsWith('.'))
        .map((name) => path.resolve(path.dirname(file), name)),
    );
  }
  return graph;
}

/** Every cycle found by a depth-first walk, as the list of files around it (first file repeated at the end). */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string) => {
    state.set(file, 'open');
    stack.push(file);
    for (const dep of graph.get(file) ?? []) {
      if (state.get(dep) === 'open') found.push([...stack.slice(stack.indexOf(dep)), dep]);
      else if (!state.has(dep)) visit(dep);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of graph.keys()) if (!state.has(file)) visit(file);
  return found;
}

describe('the import graph of src/', () => {
  const graph = importGraph(sourceFiles(src));

  it('resolves every relative import to a file of src/ (so the walk below sees the whole graph)', () => {
    const unresolved = [...graph].flatMap(([file, deps]) =>
      deps
        .filter((dep) => !graph.has(dep) && dep.startsWith(src + path.sep))
        .map((dep) => `${path.relative(src, file)} → ${path.relative(src, dep)}`),
    );
    expect(unresolved).toEqual([]);
    expect(graph.size).toBeGreaterThan(50);
  });

  it('has no cycles, type-only imports included', () => {
    const described = cycles(graph).map((cycle) => cycle.map((file) => path.relative(src, file)).join(' → '));
    expect(described).toEqual([]);
  });

  it('finds a cycle when there is one (the walk itself works)', () => {
    const graphWithCycle = new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
      ['d', ['a']],
    ]);
    expect(cycles(graphWithCycle)).toEqual([['a', 'b', 'c', 'a']]);
  });
});
