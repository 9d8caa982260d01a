// The CustomResourceDefinition, built from the one schema in singletonjob.ts.
import type { V1CustomResourceDefinition } from '@kubernetes/client-node';
import type { OpenAPISchema } from './builder.ts';
import { GROUP, KIND, PLURAL, VERSION, singletonJobField } from './singletonjob.ts';

export const CRD_NAME = `${PLURAL}.${GROUP}`;
export const CRD_FILE = `manifests/crds/${CRD_NAME}.yaml`;

function rootSchema(): OpenAPISchema {
  const schema = structuredClone(singletonJobField.schema);
  // At the root, a CRD may only constrain metadata.name/generateName; the API server owns the rest.
  schema.properties = { ...schema.properties, metadata: { type: 'object' } };
  return schema;
}

export function singletonJobCrd(): V1CustomResourceDefinition {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: CRD_NAME,
      labels: { 'app.kubernetes.io/name': 'singleton-operator', 'app.kubernetes.io/component': 'crd' },
    },
    spec: {
      group: GROUP,
      scope: 'Namespaced',
      names: {
        kind: KIND,
        listKind: `${KIND}List`,
        plural: PLURAL,
        singular: 'singletonjob',
        shortNames: ['sj'],
        categories: ['all', 'batch'],
      },
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Schedule', type: 'string', jsonPath: '.spec.schedule' },
            { name: 'Time Zone', type: 'string', jsonPath: '.spec.timeZone' },
            { name: 'Suspend', type: 'boolean', jsonPath: '.spec.suspend' },
            { name: 'Ready', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].status' },
            { name: 'Reason', type: 'string', jsonPath: '.status.conditions[?(@.type=="Ready")].reason', priority: 1 },
            { name: 'Active', type: 'string', jsonPath: '.status.activeRun.name' },
            // A prepared run's release (its slot): set before the slot, while its Job waits suspended.
            { name: 'Release', type: 'string', jsonPath: '.status.activeRun.releaseTime', priority: 1 },
            { name: 'Token', type: 'integer', jsonPath: '.status.currentToken' },
            { name: 'Last Run', type: 'date', jsonPath: '.status.lastRunTime' },
            { name: 'Next Run', type: 'string', jsonPath: '.status.nextScheduleTime' },
            { name: 'Last Success', type: 'date', jsonPath: '.status.lastSuccessfulTime' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          // client-node's types call the x-kubernetes-* keys by their TS names; the YAML uses the wire names.
          schema: { openAPIV3Schema: rootSchema() as never },
        },
      ],
    },
  };
}
