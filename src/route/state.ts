/**
 * The state file of a running auto-route, `/run/tun2socks/<device>.json`: every undo command
 * (recorded before its command runs) and the original resolv.conf. A run that could not clean up
 * (kill -9, power loss of the namespace's holder) leaves it behind; the next start on the same
 * device and in the same network namespace replays it, then deletes it.
 */
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

/** Where state files live by default. */
export const DEFAULT_STATE_DIR = '/run/tun2socks';

/** The content of a state file. */
export interface RouteState {
  readonly version: 1;
  readonly device: string;
  readonly pid: number;
  /** Inode of the network namespace (/proc/self/ns/net) the commands ran in. */
  readonly netns: number;
  readonly table: number;
  readonly rulePriority: number;
  readonly fwmark: number;
  /** Undo argv of `ip`, in the order the commands ran (replayed in reverse). */
  readonly undo: readonly (readonly string[])[];
  /** The resolv.conf written by --set-dns: where, what was there, what we wrote. */
  readonly resolv?: { readonly path: string; readonly original: string; readonly written: string };
}

/** The state file of `device` under `dir`. */
export function statePath(dir: string, device: string): string {
  return join(dir, `${device.replaceAll('/', '_')}.json`);
}

/** The inode of this process's network namespace. */
export function currentNetns(): number {
  return statSync('/proc/self/ns/net').ino;
}

/** Reads a state file; undefined when absent or not one of ours (unreadable JSON, wrong shape). */
export function readState(path: string): RouteState | undefined {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
  try {
    const s = JSON.parse(text) as RouteState;
    if (s.version !== 1 || !Array.isArray(s.undo) || typeof s.netns !== 'number') return undefined;
    if (!s.undo.every((a) => Array.isArray(a) && a.every((x) => typeof x === 'string'))) return undefined;
    return s;
  } catch {
    return undefined;
  }
}

/** Writes a state file atomically (temp file + rename), creating the directory. */
export function writeState(path: string, state: RouteState): void {
  mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  renameSync(tmp, path);
}

/** Deletes a state file (absent is fine). */
export function removeState(path: string): void {
  rmSync(path, { force: true });
}

/** Every readable state file under `dir`, with its path. */
export function listStates(dir: string): { path: string; state: RouteState }[] {
  let names: string[];
  try {
    names = readdirSync(dir);
  } catch {
    return [];
  }
  const out: { path: string; state: RouteState }[] = [];
  for (const name of names) {
    if (!name.endsWith('.json')) continue;
    const path = join(dir, name);
    const state = readState(path);
    if (state !== undefined) out.push({ path, state });
  }
  return out;
}

/**
 * Whether the process that wrote a state file still runs: `pid` alive and its command line that
 * of tun2socks (`tun2socks` or `cli.js`), so a recycled pid is not mistaken for it.
 */
export function ownerAlive(pid: number, readCmdline: (pid: number) => string = defaultCmdline): boolean {
  if (pid === process.pid || !Number.isInteger(pid) || pid <= 0) return false;
  let cmdline: string;
  try {
    cmdline = readCmdline(pid);
  } catch {
    return false;
  }
  return /tun2socks|cli\.js/.test(cmdline);
}

function defaultCmdline(pid: number): string {
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
}
