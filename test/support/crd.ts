// Installs the committed CRD the way a user does (kubectl apply), and checks
// that the API server serves it whole. Not with client-node's typed
// create/replace: its serializer knows V1JSONSchemaProps by TypeScript
// property names (x_kubernetes_validations), so the YAML's
// `x-kubernetes-validations` keys are dropped without a word — and with them
// every CEL rule, the "never lower a token or term" fences included. The
// chaos suite and the benchmark installed the CRD that way until the
// no-election profile showed a lower term accepted (see test/chaos/README.md).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { CRD_FILE, CRD_NAME } from '../../src/api/v1alpha1/crd.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Every CEL rule the CRD file declares (x-kubernetes-validations anywhere in the schema). */
export function countRules(schema: unknown): number {
  if (Array.isArray(schema)) return schema.reduce((n: number, s) => n + countRules(s), 0);
  if (!schema || typeof schema !== 'object') return 0;
  let n = 0;
  for (const [k, v] of Object.entries(schema))
    n += k === 'x-kubernetes-validations' && Array.isArray(v) ? v.length : countRules(v);
  return n;
}

/**
 * kubectl apply --server-side of manifests/crds/…, then waits until it is
 * Established and served, and throws unless the served CRD carries every CEL
 * rule of the file.
 */
export function applyCrdWithKubectl(kubeconfig: string): void {
  const kubectl = (args: string[]) =>
    execFileSync('kubectl', ['--kubeconfig', kubeconfig, ...args], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  kubectl(['apply', '--server-side', '--force-conflicts', '-f', path.join(root, CRD_FILE)]);
  kubectl(['wait', '--for=condition=Established', `crd/${CRD_NAME}`, '--timeout=60s']);
  const want = countRules(YAML.parse(readFileSync(path.join(root, CRD_FILE), 'utf8')));
  const served = countRules(JSON.parse(kubectl(['get', 'crd', CRD_NAME, '-o', 'json'])));
  if (served !== want)
    throw new Error(
      `the API server serves CRD ${CRD_NAME} with ${served} CEL rules, the file declares ${want}: it was installed without its validations`,
    );
}
