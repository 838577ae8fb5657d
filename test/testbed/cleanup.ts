/**
 * Teardown that survives failures: every live test bed is registered here, and the first one
 * installs (once per process) `exit`, `SIGINT` and `SIGTERM` handlers that tear down every live
 * bed synchronously. `sweepStale` removes namespaces left by processes that died without either.
 */
import { execFileSync } from 'node:child_process';
import { readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ipPath, run } from './exec.js';
import { netnsPid } from './names.js';

/** Something that can tear itself down synchronously, from an `exit` or signal handler. */
export interface SyncDestroyable {
  destroySync(): void;
}

const live = new Set<SyncDestroyable>();
let handlersInstalled = false;

/** Tears down every live test bed synchronously; never throws. */
export function destroyAllSync(): void {
  for (const bed of [...live]) {
    try {
      bed.destroySync();
    } catch {
      // Best effort: one broken bed must not stop the others' teardown.
    }
    live.delete(bed);
  }
}

function onSignal(signal: NodeJS.Signals): void {
  destroyAllSync();
  process.off(signal, onSignal);
  // With no other listener, re-raise so the process dies of the signal as it would have;
  // otherwise the remaining listeners (e.g. the test runner's) decide what happens next.
  if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on('exit', destroyAllSync);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

/** Registers a bed for teardown at exit or on SIGINT/SIGTERM (installing the handlers once). */
export function register(bed: SyncDestroyable): void {
  installHandlers();
  live.add(bed);
}

/** Forgets a bed that tore itself down. */
export function unregister(bed: SyncDestroyable): void {
  live.delete(bed);
}

/** Whether a process `pid` exists (EPERM means it exists but is not ours to signal). */
export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The names of all named network namespaces (`ip netns list`, first word of each line). */
export async function listNetns(): Promise<string[]> {
  const { stdout } = await run(ipPath(), ['netns', 'list']);
  return stdout
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

/** Whether a pid read from a test-bed name belongs to a process that is gone. */
function stalePid(pid: number | undefined): pid is number {
  return pid !== undefined && pid !== process.pid && !pidAlive(pid);
}

/**
 * Deletes namespaces named `t2s-<pid>-<counter>-…` whose pid is no longer alive: leftovers of a
 * killed run. Namespaces of other names and of live pids are never touched. Also removes the
 * temp dirs such a run made (`<tmpdir>/t2s-<pid>-<counter>-XXXXXX`). Resolves with the names of
 * the namespaces deleted.
 */
export async function sweepStale(): Promise<string[]> {
  const deleted: string[] = [];
  for (const name of await listNetns()) {
    if (!stalePid(netnsPid(name))) continue;
    // Another process may be sweeping the same leftover at the same moment: losing that race is fine.
    const { code } = await run(ipPath(), ['netns', 'del', name], { allowFail: true });
    if (code === 0) deleted.push(name);
  }
  for (const entry of await readdir(tmpdir(), { withFileTypes: true })) {
    // Exactly what Testbed.tmpdir() makes with mkdtemp (six random characters at the end).
    if (!entry.isDirectory() || !/^t2s-\d+-\d+-[A-Za-z0-9]{6}$/.test(entry.name)) continue;
    if (stalePid(netnsPid(entry.name)))
      await rm(join(tmpdir(), entry.name), { recursive: true, force: true });
  }
  return deleted;
}

/** Runs a command synchronously for teardown, bounded to 5 s; returns stdout, or '' on any failure. */
export function runSyncQuiet(cmd: string, args: readonly string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 5000, stdio: ['ignore', 'pipe', 'ignore'] });
  } catch {
    return '';
  }
}
