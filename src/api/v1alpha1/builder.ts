// A tiny schema builder: every field is declared once and yields both its
// OpenAPI v3 (structural, with x-kubernetes-* extensions) fragment for the CRD
// and the equivalent zod schema, from which the TypeScript types are inferred.
// CEL rules carry a JS predicate with the same meaning so zod enforces them
// too; transition rules (oldSelf) only exist server-side.
import { z } from 'zod';

export interface CelRule {
  rule: string;
  message: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
  fieldPath?: string;
}

export interface OpenAPISchema {
  type?: 'object' | 'string' | 'integer' | 'boolean' | 'array';
  description?: string;
  format?: string;
  enum?: string[];
  default?: unknown;
  minimum?: number;
  maximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  minItems?: number;
  maxItems?: number;
  items?: OpenAPISchema;
  properties?: Record<string, OpenAPISchema>;
  additionalProperties?: OpenAPISchema;
  required?: string[];
  'x-kubernetes-preserve-unknown-fields'?: true;
  'x-kubernetes-list-type'?: 'atomic' | 'map' | 'set';
  'x-kubernetes-list-map-keys'?: string[];
  'x-kubernetes-validations'?: CelRule[];
}

export interface Field<Z extends z.ZodType = z.ZodType> {
  schema: OpenAPISchema;
  zod: Z;
}

/**
 * A CEL rule plus its JS twin. A transition rule (oldSelf) has a twin of two
 * values, which zod cannot evaluate (it sees one object): in-memory fakes of
 * the API server use it (test/support/fake-cluster.ts).
 */
export interface Rule<T> extends CelRule {
  check: ((value: T) => boolean) | { transition: (oldSelf: T, self: T) => boolean };
}

/** Largest integer that survives JSON in JavaScript (and fits CEL's int64). */
export const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/**
 * A string. Prefer `rules` (CEL, with a message in words) to `pattern`: the API
 * server answers a pattern mismatch with the raw regular expression.
 */
export function str(
  description: string,
  o: { pattern?: string; minLength?: number; maxLength?: number; format?: 'date-time'; rules?: Rule<string>[] } = {},
): Field<z.ZodString> {
  const { rules = [], ...props } = o;
  let zod = z.string();
  if (o.minLength !== undefined) zod = zod.min(o.minLength);
  if (o.maxLength !== undefined) zod = zod.max(o.maxLength);
  if (o.pattern !== undefined) zod = zod.regex(new RegExp(o.pattern));
  if (o.format === 'date-time')
    zod = zod.refine((v) => !Number.isNaN(Date.parse(v)), 'must be an RFC 3339 date-time') as unknown as z.ZodString;
  for (const r of rules) {
    const check = r.check;
    if (typeof check === 'function') zod = zod.refine((v) => check(v), r.message) as unknown as z.ZodString;
  }
  const schema: OpenAPISchema = { type: 'string', description, ...props };
  if (rules.length) schema['x-kubernetes-validations'] = rules.map(({ check: _check, ...cel }) => cel);
  return { schema, zod };
}

export function enumOf<const V extends readonly [string, ...string[]]>(
  description: string,
  values: V,
  dflt?: V[number],
): Field<z.ZodEnum<{ [K in V[number]]: K }>> {
  const schema: OpenAPISchema = { type: 'string', description, enum: [...values] };
  if (dflt !== undefined) schema.default = dflt;
  return { schema, zod: z.enum(values) };
}

export function int(
  description: string,
  o: { minimum?: number; maximum?: number; default?: number } = {},
): Field<z.ZodNumber> {
  let zod = z.number().int();
  if (o.minimum !== undefined) zod = zod.min(o.minimum);
  zod = zod.max(o.maximum ?? MAX_SAFE);
  const schema: OpenAPISchema = { type: 'integer', format: 'int64', description };
  if (o.minimum !== undefined) schema.minimum = o.minimum;
  if (o.maximum !== undefined) schema.maximum = o.maximum;
  if (o.default !== undefined) schema.default = o.default;
  return { schema, zod };
}

export function bool(description: string, dflt?: boolean): Field<z.ZodBoolean> {
  const schema: OpenAPISchema = { type: 'boolean', description };
  if (dflt !== undefined) schema.default = dflt;
  return { schema, zod: z.boolean() };
}

export function stringMap(description: string): Field<z.ZodRecord<z.ZodString, z.ZodString>> {
  return {
    schema: { type: 'object', description, additionalProperties: { type: 'string' } },
    zod: z.record(z.string(), z.string()),
  };
}

export function arr<I extends Field>(
  description: string,
  item: I,
  o: { minItems?: number; maxItems?: number; mapKeys?: string[] } = {},
): Field<z.ZodArray<I['zod']>> {
  let zod = z.array(item.zod);
  if (o.minItems !== undefined) zod = zod.min(o.minItems);
  if (o.maxItems !== undefined) zod = zod.max(o.maxItems);
  const schema: OpenAPISchema = { type: 'array', description, items: item.schema };
  if (o.minItems !== undefined) schema.minItems = o.minItems;
  if (o.maxItems !== undefined) schema.maxItems = o.maxItems;
  if (o.mapKeys) {
    schema['x-kubernetes-list-type'] = 'map';
    schema['x-kubernetes-list-map-keys'] = o.mapKeys;
    const keys = o.mapKeys;
    zod = zod.refine(
      (items) =>
        new Set(items.map((i) => keys.map((k) => String((i as Record<string, unknown>)[k])).join('\0'))).size ===
        items.length,
      `duplicate entries by ${keys.join(', ')}`,
    ) as unknown as z.ZodArray<I['zod']>;
  }
  return { schema, zod };
}

/** Marks a property as optional: absent from `required`, `.optional()` in zod. */
export function optional<F extends Field>(field: F): Field<z.ZodOptional<F['zod']>> & { optional: true } {
  return { schema: field.schema, zod: field.zod.optional(), optional: true };
}

type Shape<P extends Record<string, Field>> = { [K in keyof P]: P[K]['zod'] };

export function obj<P extends Record<string, Field>>(
  description: string,
  props: P,
  o: { rules?: Rule<z.infer<z.ZodObject<Shape<P>>>>[]; preserveUnknown?: boolean } = {},
): Field<z.ZodObject<Shape<P>>> {
  const shape = Object.fromEntries(Object.entries(props).map(([k, f]) => [k, f.zod])) as Shape<P>;
  const required = Object.entries(props)
    .filter(([, f]) => !(f as { optional?: boolean }).optional)
    .map(([k]) => k);
  const schema: OpenAPISchema = { type: 'object', description };
  if (o.preserveUnknown) schema['x-kubernetes-preserve-unknown-fields'] = true;
  // No empty `properties: {}`: the API server drops it when it stores the CRD, so the stored CRD would
  // differ from the applied one and a second field manager (Helm after kubectl) gets a server-side apply conflict.
  if (Object.keys(props).length)
    schema.properties = Object.fromEntries(Object.entries(props).map(([k, f]) => [k, f.schema]));
  if (required.length) schema.required = required;
  const rules = o.rules ?? [];
  if (rules.length) schema['x-kubernetes-validations'] = rules.map(({ check: _check, ...cel }) => cel);
  let zod = (o.preserveUnknown ? z.looseObject(shape) : z.object(shape)) as unknown as z.ZodObject<Shape<P>>;
  for (const r of rules) {
    const check = r.check;
    if (typeof check === 'function')
      zod = zod.refine((v) => check(v), {
        message: r.message,
        path: r.fieldPath ? r.fieldPath.replace(/^\./, '').split('.') : [],
      });
  }
  return { schema, zod };
}

/** Narrows the inferred type of a (loosely validated) field to a richer hand-declared type. */
export function typed<T>() {
  return <F extends Field>(field: F): Field<z.ZodType<T>> => field as unknown as Field<z.ZodType<T>>;
}
