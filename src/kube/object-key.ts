// What every cached object has, and its key in caches, work queues, logs and
// fences: namespace/name (name alone for a cluster-scoped object). The one
// place the key is built from an object, so a queue key, a cache key and
// SINGLETON_JOB_KEY cannot drift apart.
import type { V1ObjectMeta } from '@kubernetes/client-node';

export interface KubeObject {
  metadata?: V1ObjectMeta;
}

export function objectKey(obj: KubeObject): string {
  const m = obj.metadata ?? {};
  return m.namespace ? `${m.namespace}/${m.name}` : String(m.name);
}
