// Starting, probing and stopping the control-plane processes. Every process is
// tracked by the PID we started; nothing is ever killed by name.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, existsSync } from 'node:fs';
import https from 'node:https';
import http from 'node:http';
import net from 'node:net';

export interface ProcessSpec {
  name: string;
  command: string;
  args: string[];
  log: string;
  env?: Record<string, string>;
}

export interface RunningProcess extends ProcessSpec {
  pid: number;
}

/** Starts a detached process (own process group) with output appended to its log. */
export function startProcess(spec: ProcessSpec): RunningProcess {
  const fd = openSync(spec.log, 'a');
  try {
    const child = spawn(spec.command, spec.args, {
      detached: true,
      stdio: ['ignore', fd, fd],
      env: { ...process.env, ...spec.env },
    });
    if (child.pid === undefined) throw new Error(`failed to start ${spec.name} (${spec.command})`);
    child.unref();
    return { ...spec, pid: child.pid };
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the PID is gone. */
export async function stopProcess(pid: number, graceMs = 5000): Promise<void> {
  if (!isAlive(pid)) return;
  try {
    process.kill(pid, 'SIGCONT'); // a stopped process cannot handle SIGTERM
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(50);
  if (isAlive(pid)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      return;
    }
    while (isAlive(pid)) await sleep(20);
  }
}

export function logTail(file: string, lines = 40): string {
  if (!existsSync(file)) return '(no log)';
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
}

/** A port that was free a moment ago on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}

export interface TlsClient {
  ca: Buffer;
  cert: Buffer;
  key: Buffer;
}

/** GETs a URL and resolves with the status code (0 when it could not connect). */
export function probe(url: string, tls?: TlsClient, timeoutMs = 2000): Promise<{ status: number; body: string }> {
  return new Promise((resolve) => {
    const lib = url.startsWith('https:') ? https : http;
    const req = lib.get(url, { ...(tls ?? {}), timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('timeout', () => req.destroy());
    req.on('error', () => resolve({ status: 0, body: '' }));
  });
}

/**
 * Waits until `check` resolves true, failing early if the process died. The
 * error carries the tail of the component's log, which is what a person
 * needs to see when a startup fails.
 */
export async function waitFor(
  what: string,
  check: () => Promise<boolean>,
  proc: RunningProcess | undefined,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (proc && !isAlive(proc.pid)) {
      throw new Error(
        `${proc.name} exited while waiting for ${what}; last lines of ${proc.log}:\n${logTail(proc.log)}`,
      );
    }
    await sleep(100);
  }
  const tail = proc ? `; last lines of ${proc.log}:\n${logTail(proc.log)}` : '';
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${tail}`);
}
