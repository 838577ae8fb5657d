/**
 * Device specs as given on the command line: `tun0` or `tun://tun0` name an interface to create or
 * attach, `fd://3` an already open TUN fd handed over by a parent process.
 */
import { TunError } from './errors.js';

/** What a device spec names: an interface by name, or an inherited fd. */
export type DeviceSpec = { readonly name: string } | { readonly fd: number };

/** IFNAMSIZ (16) less the terminating NUL: the longest interface name Linux accepts, in bytes. */
export const IFNAME_MAX_BYTES = 15;

/**
 * Why `name` is not a valid Linux interface name, or undefined when it is. Mirrors the kernel's
 * `dev_valid_name()` (net/core/dev.c): 1..15 bytes, not `.` or `..`, no `/`, `:` or whitespace.
 */
export function ifNameProblem(name: string): string | undefined {
  if (name === '') return 'the interface name is empty';
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > IFNAME_MAX_BYTES)
    return `interface name "${name}" is ${bytes} bytes long: Linux allows at most ${IFNAME_MAX_BYTES}`;
  if (name === '.' || name === '..') return `interface name "${name}" is reserved`;
  if (/[/:\s\0]/.test(name))
    return `interface name ${JSON.stringify(name)} contains "/", ":", a NUL or whitespace, which Linux rejects`;
  return undefined;
}

/** Throws a TUN_BAD_NAME TunError unless `name` is a valid interface name. */
export function checkIfName(name: string): void {
  const problem = ifNameProblem(name);
  if (problem !== undefined) throw new TunError('TUN_BAD_NAME', problem);
}

function specError(spec: string, why: string): TunError {
  return new TunError(
    'TUN_SPEC',
    `bad device ${JSON.stringify(spec)}: ${why} (expected tun0, tun://tun0 or fd://3)`,
  );
}

/** Parses `tun0`, `tun://tun0` or `fd://3`; throws a TUN_SPEC TunError naming the problem otherwise. */
export function parseDeviceSpec(spec: string): DeviceSpec {
  const trimmed = spec.trim();
  if (trimmed === '') throw specError(spec, 'it is empty');
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\/(.*)$/.exec(trimmed);
  if (scheme === null) {
    if (trimmed.includes('://') || trimmed.includes(':'))
      throw specError(spec, 'the scheme is malformed or the name contains ":"');
    const problem = ifNameProblem(trimmed);
    if (problem !== undefined) throw specError(spec, problem);
    return { name: trimmed };
  }
  const kind = scheme[1]!.toLowerCase();
  const rest = scheme[2]!;
  if (kind === 'tun') {
    const problem = ifNameProblem(rest);
    if (problem !== undefined) throw specError(spec, problem);
    return { name: rest };
  }
  if (kind === 'fd') {
    if (!/^\d{1,10}$/.test(rest)) throw specError(spec, `"${rest}" is not a file descriptor number`);
    const fd = Number(rest);
    if (fd > 0x7fffffff) throw specError(spec, `fd ${rest} is out of range`);
    if (fd <= 2) throw specError(spec, `fd ${fd} is stdin, stdout or stderr, not a TUN device`);
    return { fd };
  }
  throw specError(spec, `unknown scheme "${kind}://"`);
}
