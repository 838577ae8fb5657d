/**
 * Running commands for the test bed: `execFile` (never a shell unless asked), a bounded time, the
 * exit code and both outputs collected, and the absolute path of iproute2's `ip`.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** What a finished command returned. */
export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run a command: time bound (default 30 s), text for its stdin, and whether a non-zero exit is fine. */
export interface ExecOptions {
  timeoutMs?: number;
  input?: string;
  allowFail?: boolean;
}

/** The default bound on one command, in milliseconds. */
export const DEFAULT_EXEC_TIMEOUT_MS = 30_000;

/** Output kept per stream; a command printing more than this fails instead of eating memory. */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;

/** Looks `name` up in PATH and then in the sbin directories that a non-login PATH may lack. */
export function findExecutable(name: string): string | undefined {
  const dirs = (process.env.PATH ?? '').split(delimiter).filter((d) => d !== '');
  for (const dir of [...dirs, '/usr/local/sbin', '/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    const path = join(dir, name);
    if (existsSync(path)) return path;
  }
  return undefined;
}

let ipPathCache: string | undefined;

/** The absolute path of iproute2's `ip` (throws when it is not installed). */
export function ipPath(): string {
  ipPathCache ??= findExecutable('ip');
  if (ipPathCache === undefined) throw new Error('iproute2 `ip` not found (apt-get install iproute2)');
  return ipPathCache;
}

/** A one-line rendering of a command for error messages. */
export function describeCommand(cmd: string, args: readonly string[]): string {
  return [cmd, ...args].map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : JSON.stringify(a))).join(' ');
}

/**
 * Runs `cmd args` without a shell. Resolves with the exit code and outputs; rejects when the
 * command cannot start, outlives `timeoutMs` (it is then SIGKILLed), dies of a signal, or exits
 * non-zero without `allowFail`.
 */
export function run(cmd: string, args: readonly string[], opts: ExecOptions = {}): Promise<ExecResult> {
  const timeoutMs = opts.timeoutMs ?? DEFAULT_EXEC_TIMEOUT_MS;
  const shown = describeCommand(cmd, args);
  return new Promise((resolve, reject) => {
    const child = execFile(
      cmd,
      args,
      { timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: MAX_OUTPUT_BYTES, encoding: 'utf8' },
      (err, stdout, stderr) => {
        if (err === null) {
          resolve({ code: 0, stdout, stderr });
          return;
        }
        const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null };
        if (typeof e.code === 'number' && e.signal == null) {
          const result = { code: e.code, stdout, stderr };
          if (opts.allowFail === true) resolve(result);
          else reject(new Error(`\`${shown}\` exited with ${e.code}: ${stderr.trim() || stdout.trim()}`));
          return;
        }
        if (e.killed === true && e.signal === 'SIGKILL') {
          reject(new Error(`\`${shown}\` timed out after ${timeoutMs} ms`));
          return;
        }
        reject(new Error(`\`${shown}\` failed: ${e.signal != null ? `killed by ${e.signal}` : e.message}`));
      },
    );
    // A closed stdin keeps commands that read it from waiting forever; a command that exits
    // without reading its input makes the write fail with EPIPE, which is not our error.
    child.stdin?.on('error', () => {});
    child.stdin?.end(opts.input);
  });
}
