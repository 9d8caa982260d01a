// What the caches keep of an object from the API server: a copy without what
// nothing here reads, built so that 10,000 cached SingletonJobs (and their
// Jobs) cost as little heap as the data allows:
//  - metadata.managedFields and kubectl's last-applied-configuration
//    annotation are dropped: the first was a third of a SingletonJob's heap,
//    the second repeats the whole spec as one string. Writes never send them
//    back: status updates take only .status (the server copies everything
//    else from the stored object), and nothing here updates a whole object.
//  - every object is rebuilt rather than `delete`d from: deleting a property
//    turns a V8 object into a hash table (~450 bytes more per metadata).
//  - short strings are shared: JSON.parse gives each object its own copy of
//    the same apiVersion, kind, schedule, time zone, image, slot timestamps…
//    (~7 MiB at 10,000 objects). V8 keeps one copy of each property name in
//    its string table and drops entries nothing uses any more, so using a
//    value once as a key and reading the key back yields the shared copy —
//    without a table of our own that would have to be pruned.
import type { KubeObject } from './informer.ts';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Longer strings are rarely repeated (messages, last-applied copies); not worth a table lookup. */
const INTERN_MAX_LENGTH = 96;

export function intern(s: string): string {
  if (s.length > INTERN_MAX_LENGTH) return s;
  const holder: Record<string, 0> = { [s]: 0 };
  for (const key in holder) return key;
  return s;
}

/** A compact copy of `obj` for a cache (see the header); `obj` is not changed. */
export function slimObject<T extends KubeObject>(obj: T): T {
  return copy(obj, 0) as T;
}

function copy(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return intern(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => copy(v, depth + 1));
  if (value instanceof Date) return value;
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(value)) {
    const kept = depth === 0 && key === 'metadata' && v && typeof v === 'object' ? copyMetadata(v as Record<string, unknown>) : copy(v, depth + 1);
    // JSON.parse makes "__proto__" an own key; an assignment would set the prototype instead.
    // (Keys need no interning: V8 already shares property names.)
    if (key === '__proto__') Object.defineProperty(out, key, { value: kept, enumerable: true, writable: true, configurable: true });
    else out[key] = kept;
  }
  return out;
}

function copyMetadata(metadata: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, v] of Object.entries(metadata)) {
    if (key === 'managedFields') continue;
    if (key === 'annotations' && v && typeof v === 'object') {
      const annotations: Record<string, string> = {};
      for (const [name, text] of Object.entries(v as Record<string, string>)) if (name !== LAST_APPLIED) annotations[name] = intern(text);
      out[key] = annotations;
    } else out[key] = copy(v, 1);
  }
  return out;
}
