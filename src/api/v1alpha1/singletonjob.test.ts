import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { CRD_FILE } from './crd.ts';
import { renderCrd } from './generate-crd.ts';
import { corpus } from '../../../test/support/api-corpus.ts';
import { singletonJobSchema } from './singletonjob.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');

describe('the SingletonJob CRD', () => {
  it('committed manifest equals the one generated from the code (run `npm run crd:generate`)', () => {
    expect(readFileSync(path.join(root, CRD_FILE), 'utf8')).toBe(renderCrd());
  });

  it('carries the fencing transition rules at the root, where dropping status cannot skip them', () => {
    const crd = parse(renderCrd());
    const rules = crd.spec.versions[0].schema.openAPIV3Schema['x-kubernetes-validations'].map((r: { rule: string }) => r.rule);
    expect(rules.join('\n')).toContain('self.status.currentToken >= oldSelf.status.currentToken');
    expect(rules.join('\n')).toContain('self.status.leaderTerm >= oldSelf.status.leaderTerm');
  });
});

describe('zod agrees with the corpus', () => {
  it.each(corpus.map((c) => [c.name, c] as const))('%s', (_name, entry) => {
    const result = singletonJobSchema.safeParse(entry.object);
    expect(result.success).toBe(entry.valid);
  });

  it('rejects an activeRun whose token is not the current token', () => {
    const base = corpus[0]!.object;
    const status = { currentToken: 5, activeRun: { name: 'x-1', token: 4, term: 4, kind: 'Manual', reservedTime: '2025-01-01T00:00:00Z' } };
    expect(singletonJobSchema.safeParse({ ...base, status }).success).toBe(false);
    expect(singletonJobSchema.safeParse({ ...base, status: { ...status, currentToken: 4 } }).success).toBe(true);
  });

  it('refuses tokens that JSON cannot carry exactly', () => {
    const base = corpus[0]!.object;
    expect(singletonJobSchema.safeParse({ ...base, status: { currentToken: 2 ** 53 } }).success).toBe(false);
  });
});
