// Child processes of the benchmark (electors, operator replicas) that print
// JSON lines on stdout. Each is tracked by the PID we started and stopped by
// that PID only (SIGTERM / SIGKILL), never by name. stderr and any non-JSON
// stdout go to a log file per process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync, type WriteStream } from 'node:fs';
import { createInterface } from 'node:readline';

export interface LineEvent {
  event: string;
  /** Unix ms as printed by the child, or when we read the line. */
  t: number;
  [key: string]: unknown;
}

export interface SpawnOptions {
  name: string;
  command: string;
  args: string[];
  env?: Record<string, string>;
  log: string;
  cwd?: string;
}

export class Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  readonly events: LineEvent[] = [];
  exited: { code: number | null; signal: string | null; at: number } | undefined;
  private waiters: Array<() => void> = [];
  private logStream: WriteStream;
  private exitPromise: Promise<void>;

  constructor(options: SpawnOptions) {
    this.name = options.name;
    this.logStream = createWriteStream(options.log, { flags: 'a' });
    this.proc = spawn(options.command, options.args, {
      cwd: options.cwd,
      env: { ...process.env, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    if (this.proc.pid === undefined) throw new Error(`failed to start ${options.name}`);
    this.pid = this.proc.pid;
    this.proc.stderr?.pipe(this.logStream, { end: false });
    const rl = createInterface({ input: this.proc.stdout! });
    rl.on('line', (line) => {
      const readAt = Date.now();
      let parsed: LineEvent | undefined;
      if (line.startsWith('{')) {
        try {
          const obj = JSON.parse(line) as Record<string, unknown>;
          const event = typeof obj.event === 'string' ? obj.event : typeof obj.msg === 'string' ? obj.msg : undefined;
          if (event !== undefined)
            parsed = {
              ...obj,
              event,
              t: typeof obj.t === 'number' ? obj.t : typeof obj.time === 'number' ? obj.time : readAt,
            };
        } catch {
          parsed = undefined;
        }
      }
      this.logStream.write(`${line}\n`);
      if (parsed) {
        this.events.push(parsed);
        this.wake();
      }
    });
    this.exitPromise = new Promise((resolve) => {
      this.proc.on('exit', (code, signal) => {
        this.exited = { code, signal, at: Date.now() };
        this.wake();
        resolve();
      });
    });
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const fn of w) fn();
  }

  get alive(): boolean {
    return this.exited === undefined;
  }

  /** Resolves with the first event (from index `from`) matching `pred`. */
  async waitEvent(pred: (e: LineEvent) => boolean, timeoutMs: number, from = 0): Promise<LineEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const hit = this.events.slice(from).find(pred);
      if (hit) return hit;
      if (this.exited)
        throw new Error(`${this.name} exited (${this.exited.code ?? this.exited.signal}) before the awaited event`);
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`${this.name}: timed out after ${timeoutMs} ms waiting for an event`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  signal(sig: NodeJS.Signals): number {
    const at = Date.now();
    if (this.alive) {
      try {
        process.kill(this.pid, sig);
      } catch {
        /* already gone */
      }
    }
    return at;
  }

  /** SIGTERM, SIGKILL after graceMs; resolves once it has exited. */
  async stop(graceMs = 5000): Promise<void> {
    if (!this.alive) return;
    this.signal('SIGTERM');
    const timer = setTimeout(() => this.signal('SIGKILL'), graceMs);
    await this.exitPromise;
    clearTimeout(timer);
  }

  async waitExit(): Promise<void> {
    await this.exitPromise;
  }

  /** Resident set size in bytes from /proc/<pid>/status (VmRSS), or NaN. */
  rssBytes(): number {
    return rssOf(this.pid);
  }

  close(): void {
    this.logStream.end();
  }
}

export function rssOf(pid: number, field: 'VmRSS' | 'VmHWM' = 'VmRSS'): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const m = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, 'm').exec(status);
    return m ? Number(m[1]) * 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
