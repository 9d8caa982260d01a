// Reads the API server's audit log (JSON lines of audit.k8s.io/v1 Events at
// Metadata level, see test/controlplane/controlplane.ts) incrementally: each
// reader remembers its byte offset, so a benchmark that runs for an hour does
// not re-parse what it has already seen. The audit log is the ground truth of
// the benchmarks: it records, per authenticated identity, every request and
// when the API server finished it (stageTimestamp, microsecond precision, on
// the same machine clock as the benchmark).
import { closeSync, existsSync, openSync, readSync, statSync } from 'node:fs';

export interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  user: string;
  /** The Pod a ServiceAccount token was bound to (authentication.kubernetes.io/pod-name), for requests from Pods. */
  pod?: string;
  userAgent?: string;
  resource?: string;
  subresource?: string;
  namespace?: string;
  name?: string;
  apiGroup?: string;
  code?: number;
  /** Unix ms (fractional: the log has microseconds). */
  received: number;
  /** Unix ms at the logged stage (ResponseComplete for ordinary requests). */
  stageAt: number;
  requestURI: string;
}

interface RawEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  userAgent?: string;
  user?: { username?: string; extra?: Record<string, string[]> };
  objectRef?: { resource?: string; subresource?: string; namespace?: string; name?: string; apiGroup?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
  stageTimestamp: string;
}

/** RFC 3339 with microseconds → fractional unix milliseconds. */
export function parseMicroTime(s: string): number {
  const m = /^(.*?)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$/.exec(s);
  if (!m) return Date.parse(s);
  const whole = Date.parse(`${m[1]}${m[3]}`);
  const frac = m[2] ? Number(`0.${m[2]}`) * 1000 : 0;
  return whole + frac;
}

export class AuditReader {
  private offset = 0;
  private carry = '';
  readonly file: string;

  constructor(file: string) {
    this.file = file;
  }

  /** The byte offset read so far (for a second reader to start from). */
  get position(): number {
    return this.offset;
  }

  /** Continues from a byte offset that an earlier reader reported. */
  seek(offset: number): void {
    this.offset = offset;
    this.carry = '';
  }

  /** Skips everything logged so far. */
  skipToEnd(): void {
    this.offset = existsSync(this.file) ? statSync(this.file).size : 0;
    this.carry = '';
  }

  /** Events appended since the last call. */
  readNew(): AuditEvent[] {
    if (!existsSync(this.file)) return [];
    const size = statSync(this.file).size;
    if (size < this.offset) {
      this.offset = 0; // rotated
      this.carry = '';
    }
    const out: AuditEvent[] = [];
    if (size === this.offset) return out;
    const fd = openSync(this.file, 'r');
    try {
      const chunk = Buffer.alloc(8 * 1024 * 1024);
      while (this.offset < size) {
        const n = readSync(fd, chunk, 0, Math.min(chunk.length, size - this.offset), this.offset);
        if (n <= 0) break;
        this.offset += n;
        const text = this.carry + chunk.toString('utf8', 0, n);
        const lines = text.split('\n');
        this.carry = lines.pop() ?? '';
        for (const line of lines) {
          const e = parseLine(line);
          if (e) out.push(e);
        }
      }
    } finally {
      closeSync(fd);
    }
    return out;
  }
}

function parseLine(line: string): AuditEvent | undefined {
  if (!line.trim()) return undefined;
  let raw: RawEvent;
  try {
    raw = JSON.parse(line) as RawEvent;
  } catch {
    return undefined;
  }
  return {
    auditID: raw.auditID,
    stage: raw.stage,
    verb: raw.verb,
    user: raw.user?.username ?? '',
    pod: raw.user?.extra?.['authentication.kubernetes.io/pod-name']?.[0],
    userAgent: raw.userAgent,
    resource: raw.objectRef?.resource,
    subresource: raw.objectRef?.subresource,
    namespace: raw.objectRef?.namespace,
    name: raw.objectRef?.name,
    apiGroup: raw.objectRef?.apiGroup,
    code: raw.responseStatus?.code,
    received: parseMicroTime(raw.requestReceivedTimestamp),
    stageAt: parseMicroTime(raw.stageTimestamp),
    requestURI: raw.requestURI,
  };
}

/**
 * One entry per request: a watch logs ResponseStarted and later
 * ResponseComplete under the same auditID; keep the first stage seen.
 */
export function uniqueRequests(events: readonly AuditEvent[]): AuditEvent[] {
  const seen = new Set<string>();
  const out: AuditEvent[] = [];
  for (const e of events) {
    if (seen.has(e.auditID)) continue;
    seen.add(e.auditID);
    out.push(e);
  }
  return out;
}

export const isWrite = (e: AuditEvent) =>
  e.verb === 'create' || e.verb === 'update' || e.verb === 'patch' || e.verb === 'delete';
export const succeeded = (e: AuditEvent) => e.code !== undefined && e.code >= 200 && e.code < 300;

/** Requests per identity and verb, e.g. { "bench:cg-1": { get: 14, update: 30 } }. */
export function countByUserVerb(events: readonly AuditEvent[]): Map<string, Record<string, number>> {
  const out = new Map<string, Record<string, number>>();
  for (const e of uniqueRequests(events)) {
    const row = out.get(e.user) ?? {};
    row[e.verb] = (row[e.verb] ?? 0) + 1;
    out.set(e.user, row);
  }
  return out;
}
