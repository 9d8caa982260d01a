// What the caches keep of an object from the API server: the object itself,
// trimmed in place, so that 10,000 cached SingletonJobs (and their Jobs) cost
// as little heap as the data allows:
//  - metadata.managedFields and kubectl's last-applied-configuration
//    annotation are dropped: the first was a third of a SingletonJob's heap,
//    the second repeats the whole spec as one string. Writes never send them
//    back: status updates take only .status (the server copies everything
//    else from the stored object), and nothing here updates a whole object.
//  - in place, not copied, and without `delete`: JSON.parse builds each object
//    with exactly as many in-object property slots as it has properties. A
//    copy built property by property spills past the fourth into a separate
//    backing store, and deleting a property turns a V8 object into a hash
//    table, larger per object. So
//    managedFields is set to undefined (the slot stays, its array goes) and
//    only an annotations map that holds last-applied is rebuilt.
//  - short strings are shared: JSON.parse gives each object its own copy of
//    the same apiVersion, kind, schedule, time zone, image, slot timestamps….
//    V8 keeps one copy of each property name in
//    its string table and drops entries nothing uses any more, so using a
//    value once as a key and reading the key back yields the shared copy —
//    without a table of our own that would have to be pruned.
// What each of these saved at 10,000 objects: bench/results/probes.md.
import type { KubeObject } from './object-key.ts';

export const LAST_APPLIED = 'kubectl.kubernetes.io/last-applied-configuration';
/** Longer strings are rarely repeated (messages, last-applied copies); not worth a table lookup. */
const INTERN_MAX_LENGTH = 96;

export function intern(s: string): string {
  if (s.length > INTERN_MAX_LENGTH) return s;
  const holder: Record<string, 0> = { [s]: 0 };
  for (const key in holder) return key;
  return s;
}

/**
 * Trims `obj` in place for a cache (see the header) and returns it. Only for
 * objects nothing else holds: fresh from JSON.parse, a list page or a
 * projection.
 */
export function slimInPlace<T extends KubeObject>(obj: T): T {
  const metadata = obj.metadata as Record<string, unknown> | undefined;
  if (metadata && typeof metadata === 'object') {
    if (metadata.managedFields !== undefined) metadata.managedFields = undefined;
    const annotations = metadata.annotations as Record<string, string> | undefined;
    if (annotations && typeof annotations === 'object' && Object.hasOwn(annotations, LAST_APPLIED)) {
      const kept: Record<string, string> = {};
      for (const [name, text] of Object.entries(annotations)) if (name !== LAST_APPLIED) defineData(kept, name, text);
      metadata.annotations = kept;
    }
  }
  internStrings(obj);
  return obj;
}

/** Replaces every short string value under `value` with its shared copy. */
function internStrings(value: object): void {
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const v: unknown = value[i];
      if (typeof v === 'string') value[i] = intern(v);
      else if (v !== null && typeof v === 'object') internStrings(v);
    }
    return;
  }
  if (value instanceof Date) return;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const v = record[key];
    if (typeof v === 'string') defineData(record, key, intern(v));
    else if (v !== null && typeof v === 'object') internStrings(v);
  }
}

/** record[key] = value, except that a "__proto__" key (JSON.parse makes it an own property) stays data. */
function defineData(record: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__')
    Object.defineProperty(record, key, { value, enumerable: true, writable: true, configurable: true });
  else record[key] = value;
}
