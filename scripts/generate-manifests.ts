// Keeps the chart and the plain manifests in step with their sources:
//   manifests/crds/*.yaml                       → charts/singleton-operator/templates/crds/ (copied into a
//                                                 template gated by crds.enabled, so `helm upgrade` updates
//                                                 the CRD; crds.keep adds helm.sh/resource-policy: keep)
//   manifests/rbac-aggregated-clusterroles.yaml → charts/singleton-operator/templates/aggregated-clusterroles.yaml
//   helm template of the chart                  → manifests/install.yaml (plus its Namespace; without the
//                                                 CRD and without Helm's managed-by label)
// Run: npm run manifests:generate. test/integration/helm.test.ts fails when a
// committed file differs from what this produces.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
export const CRD_TEMPLATES = 'charts/singleton-operator/templates/crds';

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
    files.set(
      `${CRD_TEMPLATES}/${name}`,
      crdTemplate(`manifests/crds/${name}`, readFileSync(path.join(root, 'manifests', 'crds', name), 'utf8')),
    );
  }
  if (existsSync(path.join(root, AGGREGATED_SOURCE))) {
    const source = readFileSync(path.join(root, AGGREGATED_SOURCE), 'utf8');
    files.set(
      AGGREGATED_TEMPLATE,
      `{{- /* Copied from ${AGGREGATED_SOURCE} by scripts/generate-manifests.ts; do not edit. */}}\n{{- if .Values.rbac.aggregateToDefaultRoles }}\n${perRelease(source).trimEnd()}\n{{- end }}\n`,
    );
  }
  return files;
}

/**
 * ClusterRoles named after the release (the plain manifest's names are the
 * default release's), so two releases, or the chart as a subchart, coexist.
 */
function perRelease(manifest: string): string {
  return manifest
    .replace(/^  name: singleton-operator:/gm, '  name: {{ include "singleton-operator.fullname" . }}:')
    .replace(
      /^    app\.kubernetes\.io\/name: singleton-operator\n/gm,
      '    {{- include "singleton-operator.labels" . | nindent 4 }}\n',
    );
}

/**
 * The CRD as a template, the way cert-manager ships its CRDs: rendered only
 * with crds.enabled (a chart's crds/ folder is installed once and never
 * upgraded), kept on uninstall with crds.keep. The manifest is otherwise
 * verbatim; the annotation goes into its metadata.
 */
function crdTemplate(source: string, manifest: string): string {
  const body = manifest.replace(/^#.*\n/gm, '');
  const metadata = /^metadata:\n  name: .*\n/m;
  if (!metadata.test(body)) throw new Error(`${source}: no metadata.name at the top of the manifest`);
  const withKeep = body.replace(
    metadata,
    (m) => `${m}  {{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n  {{- end }}\n`,
  );
  return `{{- /* Copied from ${source} by scripts/generate-manifests.ts; do not edit. */}}\n{{- if .Values.crds.enabled }}\n${withKeep.trimEnd()}\n{{- end }}\n`;
}

/** manifests/install.yaml: everything but the CRDs, for `kubectl apply` without Helm. */
export function renderInstall(helm = resolveHelm()): string {
  const rendered = execFileSync(
    helm,
    [
      'template',
      RELEASE_NAME,
      chartDir,
      '--namespace',
      INSTALL_NAMESPACE,
      '--kube-version',
      KUBE_VERSION,
      '--set',
      'crds.enabled=false',
    ],
    {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  )
    // Applied with kubectl, nothing here is managed by Helm.
    .replace(/^\s*app\.kubernetes\.io\/managed-by: Helm\n/gm, '');
  const header =
    '# Generated from charts/singleton-operator by scripts/generate-manifests.ts (npm run manifests:generate); do not edit.\n' +
    `# Install: kubectl apply -f manifests/crds/ && kubectl apply -f manifests/install.yaml\n` +
    `# (namespace ${INSTALL_NAMESPACE}, release name ${RELEASE_NAME}, the chart's default values)\n`;
  return `${header}---\n${NAMESPACE}${rendered.startsWith('---') ? '' : '---\n'}${rendered}`;
}

export function generate(): string[] {
  const written: string[] = [];
  const crdCopies = path.join(root, CRD_TEMPLATES);
  const files = copiedFiles();
  mkdirSync(crdCopies, { recursive: true });
  for (const name of readdirSync(crdCopies)) {
    if (!files.has(`${CRD_TEMPLATES}/${name}`)) rmSync(path.join(crdCopies, name));
  }
  // Before the CRD became a template it lived in the chart's crds/ folder.
  rmSync(path.join(chartDir, 'crds'), { recursive: true, force: true });
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
