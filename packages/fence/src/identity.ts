// The run's identity as the operator hands it to every container: environment
// variables, and — when the Pod mounts them with the downward API — the Pod's
// annotations. Nothing here talks to the API server.
import { readFileSync } from 'node:fs';
import { IdentityError } from './errors.ts';

/** Environment variables the operator sets in every container of a run. */
export const Env = {
  token: 'SINGLETON_FENCING_TOKEN',
  term: 'SINGLETON_LEADER_TERM',
  jobName: 'SINGLETON_JOB_NAME',
  jobNamespace: 'SINGLETON_JOB_NAMESPACE',
  jobKey: 'SINGLETON_JOB_KEY',
  runName: 'SINGLETON_RUN_NAME',
  slot: 'SINGLETON_RUN_SLOT',
  requestId: 'SINGLETON_RUN_REQUEST_ID',
  attempt: 'SINGLETON_ATTEMPT',
  /** Optional: path of a downward-API file holding the Pod's annotations. */
  annotationsFile: 'SINGLETON_PODINFO_ANNOTATIONS',
} as const;

/** Pod annotations the operator sets on every Pod of a run. */
export const Annotations = {
  token: 'singleton.dev/fencing-token',
  term: 'singleton.dev/leader-term',
  singletonJob: 'singleton.dev/singletonjob',
  attempt: 'singleton.dev/attempt',
} as const;

export interface RunIdentity {
  /** The fencing token of this attempt: 1 ≤ token < 2^53. Compare only with tokens of the same `jobKey`. */
  token: number;
  /** The term of the leader that started the run. */
  term: number;
  /** The SingletonJob's name. */
  jobName: string;
  /** The SingletonJob's namespace. */
  jobNamespace: string;
  /** `namespace/name`: the key to fence by. Tokens strictly increase per key, also across delete and re-create. */
  jobKey: string;
  /** The run's name (the Job's name). */
  runName: string;
  /** The schedule slot (ISO 8601) of a scheduled run; undefined for a manual run. */
  slot: string | undefined;
  /** The run-now request id of a manual run; undefined for a scheduled run. */
  requestId: string | undefined;
  /** 1-based attempt of the run; every attempt is its own Job with its own, higher token. */
  attempt: number;
}

export interface ReadIdentityOptions {
  /** Defaults to `process.env`. */
  env?: Record<string, string | undefined>;
  /** Downward-API annotations file; defaults to `$SINGLETON_PODINFO_ANNOTATIONS` (none when unset). */
  annotationsFile?: string;
}

const TWO_TO_53 = 2 ** 53;

/** A positive integer below 2^53, written in plain decimal; anything else is refused. */
export function parseToken(variable: string, text: string | undefined): number {
  if (text === undefined || text === '') throw new IdentityError(variable, 'missing', 'it is not set');
  if (!/^[1-9][0-9]*$/.test(text)) {
    throw new IdentityError(variable, 'malformed', `${JSON.stringify(text)} is not a positive decimal integer`);
  }
  const value = Number(text);
  if (text.length > 16 || value >= TWO_TO_53) {
    throw new IdentityError(variable, 'malformed', `${text} is not below 2^53`);
  }
  return value;
}

function required(env: Record<string, string | undefined>, variable: string): string {
  const value = env[variable];
  if (value === undefined || value === '') throw new IdentityError(variable, 'missing', 'it is not set');
  return value;
}

/**
 * Reads the run's identity. Throws IdentityError naming the first variable
 * that is missing or malformed, or that contradicts the annotations file.
 */
export function readRunIdentity(options: ReadIdentityOptions = {}): RunIdentity {
  const env = options.env ?? process.env;
  const file = options.annotationsFile ?? (env[Env.annotationsFile] || undefined);
  const annotations = file === undefined ? undefined : readAnnotationsFile(file);

  const token = parseToken(Env.token, env[Env.token]);
  const term = parseToken(Env.term, env[Env.term]);
  const jobName = required(env, Env.jobName);
  const jobNamespace = required(env, Env.jobNamespace);
  const jobKey = required(env, Env.jobKey);
  if (jobKey !== `${jobNamespace}/${jobName}`) {
    throw new IdentityError(
      Env.jobKey,
      'inconsistent',
      `${JSON.stringify(jobKey)} is not ${Env.jobNamespace}/${Env.jobName} (${jobNamespace}/${jobName})`,
    );
  }
  const runName = required(env, Env.runName);
  const attempt = parseToken(Env.attempt, env[Env.attempt]);
  const slot = env[Env.slot] || undefined;
  if (slot !== undefined && (!/^\d{4}-\d{2}-\d{2}T/.test(slot) || Number.isNaN(Date.parse(slot)))) {
    throw new IdentityError(Env.slot, 'malformed', `${JSON.stringify(slot)} is not an ISO 8601 time`);
  }
  const identity: RunIdentity = {
    token,
    term,
    jobName,
    jobNamespace,
    jobKey,
    runName,
    slot,
    requestId: env[Env.requestId] || undefined,
    attempt,
  };

  if (annotations) {
    // The same facts from two sources must agree; a mismatch means the environment was tampered with or copied.
    const agree = (annotation: string, envValue: string | number, parse: (text: string) => string | number) => {
      const text = annotations.get(annotation);
      if (text === undefined) return;
      if (parse(text) !== envValue) {
        throw new IdentityError(
          annotation,
          'inconsistent',
          `the annotation says ${JSON.stringify(text)}, the environment ${JSON.stringify(String(envValue))}`,
        );
      }
    };
    for (const annotation of [Annotations.token, Annotations.term, Annotations.singletonJob]) {
      if (!annotations.has(annotation))
        throw new IdentityError(annotation, 'missing', `not in the annotations file ${file}`);
    }
    agree(Annotations.token, token, (t) => parseToken(Annotations.token, t));
    agree(Annotations.term, term, (t) => parseToken(Annotations.term, t));
    agree(Annotations.singletonJob, jobName, (t) => t);
    agree(Annotations.attempt, attempt, (t) => parseToken(Annotations.attempt, t));
  }
  return identity;
}

/** Reads a downward-API annotations file (`metadata.annotations` projected into a volume). */
export function readAnnotationsFile(file: string): Map<string, string> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new IdentityError(Env.annotationsFile, 'missing', `cannot read ${file}: ${(error as Error).message}`);
  }
  return parseDownwardApiFile(text, file);
}

/**
 * The kubelet writes a map as sorted lines `key="value"`, the value quoted
 * like Go's %q (strconv.Quote): backslash escapes, never a raw newline.
 */
export function parseDownwardApiFile(text: string, source = 'the annotations file'): Map<string, string> {
  const result = new Map<string, string>();
  text.split('\n').forEach((line, index) => {
    if (line.trim() === '') return;
    const eq = line.indexOf('=');
    if (eq <= 0 || line[eq + 1] !== '"' || !line.endsWith('"') || line.length < eq + 3) {
      throw new IdentityError(Env.annotationsFile, 'malformed', `${source} line ${index + 1} is not key="value"`);
    }
    const value = unquoteGo(line.slice(eq + 2, -1));
    if (value === undefined)
      throw new IdentityError(
        Env.annotationsFile,
        'malformed',
        `${source} line ${index + 1} has a bad escape or an unescaped quote`,
      );
    result.set(line.slice(0, eq), value);
  });
  return result;
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
  '"': '"',
  "'": "'",
};

/** The body of a Go double-quoted string literal, or undefined if it is not one. */
function unquoteGo(body: string): string | undefined {
  const bytes: number[] = [];
  const pushText = (s: string) => bytes.push(...Buffer.from(s, 'utf8'));
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === '"') return undefined;
    if (c !== '\\') {
      const cp = body.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      pushText(ch);
      i += ch.length - 1;
      continue;
    }
    const e = body[++i];
    if (e === undefined) return undefined;
    if (e in SIMPLE_ESCAPES) {
      pushText(SIMPLE_ESCAPES[e]!);
    } else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return undefined;
      const value = parseInt(hex, 16);
      if (e === 'x')
        bytes.push(value); // \xNN is one byte of a possibly multi-byte UTF-8 sequence
      else if (value > 0x10ffff) return undefined;
      else pushText(String.fromCodePoint(value));
      i += n;
    } else if (e >= '0' && e <= '7') {
      const oct = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct) || parseInt(oct, 8) > 255) return undefined;
      bytes.push(parseInt(oct, 8));
      i += 2;
    } else {
      return undefined;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}
