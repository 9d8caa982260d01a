// Reading the repository's Markdown the way GitHub renders it: headings and
// their anchors (GitHub's slug rules), links, and the code blocks marked
// `<!-- runnable -->` that test/integration/docs-snippets.test.ts executes.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The marker, on the line right before a code fence, of a block the tests run. */
export const RUNNABLE = '<!-- runnable -->';

/** Markdown files under `dir` (relative to the repository), recursively. */
export function markdownFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(root, rel)).sort()) {
      const child = path.posix.join(rel, name);
      if (statSync(path.join(root, child)).isDirectory()) walk(child);
      else if (name.endsWith('.md')) out.push(child);
    }
  };
  walk(dir);
  return out;
}

interface Line {
  text: string;
  /** 1-based line number. */
  n: number;
}

/** The lines outside fenced code blocks. */
function prose(text: string): Line[] {
  const out: Line[] = [];
  let fence: string | undefined;
  text.split('\n').forEach((line, i) => {
    const m = /^\s*(`{3,}|~{3,})/.exec(line);
    if (m) {
      if (!fence) fence = m[1]![0]!.repeat(m[1]!.length);
      else if (line.trim().startsWith(fence)) fence = undefined;
      return;
    }
    if (!fence) out.push({ text: line, n: i + 1 });
  });
  return out;
}

/** GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens (github-slugger). */
export function githubSlug(heading: string): string {
  const plain = heading
    .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .trim()
    .toLowerCase();
  return plain.replace(/[^\p{L}\p{M}\p{N}\p{Pc} -]/gu, '').replace(/ /g, '-');
}

/** Every anchor a file offers: its headings' slugs (repeats get -1, -2, …) and explicit `id`/`name` anchors. */
export function anchors(text: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  for (const { text: line } of prose(text)) {
    const h = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (h) {
      const base = githubSlug(h[1]!);
      const count = seen.get(base) ?? 0;
      seen.set(base, count + 1);
      out.add(count === 0 ? base : `${base}-${count}`);
    }
    for (const m of line.matchAll(/<a\s+(?:id|name)="([^"]+)"/g)) out.add(m[1]!);
  }
  return out;
}

export interface Link {
  target: string;
  line: number;
}

/** Inline links and images outside code (fenced blocks and code spans). */
export function links(text: string): Link[] {
  const out: Link[] = [];
  for (const { text: line, n } of prose(text)) {
    const withoutCode = line.replace(/(`+)[^`]*?\1/g, '');
    for (const m of withoutCode.matchAll(/!?\[[^\]]*\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g))
      out.push({ target: m[1]!, line: n });
  }
  return out;
}

export interface Block {
  lang: string;
  body: string;
  /** 1-based line of the opening fence. */
  line: number;
}

/** Every fenced code block, in document order. */
export function codeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^(`{3,})(\S*)\s*$/.exec(lines[i]!);
    if (!open) continue;
    const end = lines.findIndex((l, j) => j > i && l.trim() === open[1]);
    if (end < 0) throw new Error(`line ${i + 1}: the code block is not closed`);
    out.push({ lang: open[2]!, body: lines.slice(i + 1, end).join('\n') + '\n', line: i + 1 });
    i = end;
  }
  return out;
}

/** The code blocks right after a `<!-- runnable -->` line, in document order. */
export function runnableBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const out: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i]!.trim() !== RUNNABLE) continue;
    const open = /^(`{3,})(\S*)\s*$/.exec(lines[i + 1] ?? '');
    if (!open) throw new Error(`line ${i + 1}: ${RUNNABLE} is not followed by a code fence`);
    const end = lines.findIndex((l, j) => j > i + 1 && l.trim() === open[1]);
    if (end < 0) throw new Error(`line ${i + 2}: the runnable block is not closed`);
    out.push({ lang: open[2]!, body: lines.slice(i + 2, end).join('\n') + '\n', line: i + 2 });
    i = end;
  }
  return out;
}

export const read = (file: string) => readFileSync(path.join(root, file), 'utf8');
