// Keeps the chart and the plain manifests in step with their sources:
//   manifests/crds/*.yaml                       → charts/singleton-operator/crds/ (copied)
//   manifests/rbac-aggregated-clusterroles.yaml → charts/singleton-operator/templates/aggregated-clusterroles.yaml
//   helm template of the chart                  → manifests/install.yaml (plus its Namespace)
// Run: npm run manifests:generate. test/integration/helm.test.ts fails when a
// committed file differs from what this produces.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { resolveHelm } from '../test/controlplane/binaries.ts';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const chartDir = path.join(root, 'charts', 'singleton-operator');
export const INSTALL_NAMESPACE = 'singleton-system';
export const RELEASE_NAME = 'singleton-operator';
/** The chart requires ≥ 1.35; helm template needs a version to check that against. */
export const KUBE_VERSION = '1.36.3';

const AGGREGATED_SOURCE = 'manifests/rbac-aggregated-clusterroles.yaml';
const AGGREGATED_TEMPLATE = 'charts/singleton-operator/templates/aggregated-clusterroles.yaml';

const NAMESPACE = `apiVersion: v1
kind: Namespace
metadata:
  name: ${INSTALL_NAMESPACE}
  labels:
    app.kubernetes.io/part-of: singleton-operator
    # The operator runs under the restricted Pod Security Standard.
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
`;

/** Files copied verbatim (or wrapped) from their source, keyed by path relative to the repository. */
export function copiedFiles(): Map<string, string> {
  const files = new Map<string, string>();
  for (const name of readdirSync(path.join(root, 'manifests', 'crds')).filter((n) => n.endsWith('.yaml'))) {
    files.set(`charts/singleton-operator/crds/${name}`, readFileSync(path.join(root, 'manifests', 'crds', name), 'utf8'));
  }
  if (existsSync(path.join(root, AGGREGATED_SOURCE))) {
    const source = readFileSync(path.join(root, AGGREGATED_SOURCE), 'utf8');
    files.set(
      AGGREGATED_TEMPLATE,
      `{{- /* Copied from ${AGGREGATED_SOURCE} by scripts/generate-manifests.ts; do not edit. */}}\n{{- if .Values.rbac.aggregateToDefaultRoles }}\n${source.trimEnd()}\n{{- end }}\n`,
    );
  }
  return files;
}

/** manifests/install.yaml: everything but the CRDs, for `kubectl apply` without Helm. */
export function renderInstall(helm = resolveHelm()): string {
  const rendered = execFileSync(
    helm,
    ['template', RELEASE_NAME, chartDir, '--namespace', INSTALL_NAMESPACE, '--kube-version', KUBE_VERSION],
    { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const header =
    '# Generated from charts/singleton-operator by scripts/generate-manifests.ts (npm run manifests:generate); do not edit.\n' +
    `# Install: kubectl apply -f manifests/crds/ && kubectl apply -f manifests/install.yaml\n` +
    `# (namespace ${INSTALL_NAMESPACE}, release name ${RELEASE_NAME}, the chart's default values)\n`;
  return `${header}---\n${NAMESPACE}${rendered.startsWith('---') ? '' : '---\n'}${rendered}`;
}

export function generate(): string[] {
  const written: string[] = [];
  const crdCopies = path.join(chartDir, 'crds');
  const files = copiedFiles();
  for (const name of readdirSync(crdCopies)) {
    if (!files.has(`charts/singleton-operator/crds/${name}`)) rmSync(path.join(crdCopies, name));
  }
  for (const [file, content] of files) {
    writeFileSync(path.join(root, file), content);
    written.push(file);
  }
  writeFileSync(path.join(root, 'manifests', 'install.yaml'), renderInstall());
  written.push('manifests/install.yaml');
  return written;
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  for (const file of generate()) console.log(`wrote ${file}`);
}
