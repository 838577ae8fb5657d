/**
 * `--set-dns`: where the resolver configuration of this network namespace lives, what to write
 * there, and the nameservers of the original (the default `--dns-upstream`).
 *
 * The file is written only where it provably belongs to this namespace: in the root namespace
 * (the one of pid 1) `/etc/resolv.conf`; in a named namespace (`ip netns`, found by comparing the
 * inode of /proc/self/ns/net with those of /var/run/netns/*) `/etc/netns/NAME/resolv.conf`, and
 * only when that is the very file /etc/resolv.conf shows (`ip netns exec` bind-mounts it).
 * Anything else is refused. Writes truncate in place (same inode), so a bind mount stays intact.
 */
import { readdirSync, statSync } from 'node:fs';
import { RouteError } from './plan.js';

/** The file-system reads resolvConfPath() needs (injectable for tests). */
export interface ResolvFs {
  /** dev and inode of `path` (following symlinks), or undefined when it cannot be read. */
  stat(path: string): { readonly dev: number; readonly ino: number } | undefined;
  /** Entry names of a directory, or [] when it cannot be read. */
  list(path: string): string[];
}

/** The real file system. */
export const systemResolvFs: ResolvFs = {
  stat(path) {
    try {
      const s = statSync(path);
      return { dev: s.dev, ino: s.ino };
    } catch {
      return undefined;
    }
  },
  list(path) {
    try {
      return readdirSync(path);
    } catch {
      return [];
    }
  },
};

function same(
  a: { dev: number; ino: number } | undefined,
  b: { dev: number; ino: number } | undefined,
): boolean {
  return a !== undefined && b !== undefined && a.dev === b.dev && a.ino === b.ino;
}

/** The name of the `ip netns` namespace this process is in, or undefined (root or unnamed). */
export function namedNetns(fs: ResolvFs = systemResolvFs): string | undefined {
  const self = fs.stat('/proc/self/ns/net');
  for (const name of fs.list('/var/run/netns')) {
    if (same(self, fs.stat(`/var/run/netns/${name}`))) return name;
  }
  return undefined;
}

/** The resolv.conf --set-dns may write for this namespace; throws RouteError when it cannot tell. */
export function resolvConfPath(fs: ResolvFs = systemResolvFs): string {
  const self = fs.stat('/proc/self/ns/net');
  if (self === undefined)
    throw new RouteError('--set-dns: cannot read /proc/self/ns/net; refusing to write resolv.conf');
  if (same(self, fs.stat('/proc/1/ns/net'))) return '/etc/resolv.conf';
  const name = namedNetns(fs);
  if (name === undefined) {
    throw new RouteError(
      '--set-dns: this network namespace is neither the root one nor a named one (ip netns); refusing to write resolv.conf',
    );
  }
  const own = `/etc/netns/${name}/resolv.conf`;
  if (!same(fs.stat(own), fs.stat('/etc/resolv.conf'))) {
    throw new RouteError(
      `--set-dns: in network namespace "${name}" /etc/resolv.conf is not ${own}; create that file before starting (ip netns exec bind-mounts it) — refusing to write`,
    );
  }
  return own;
}

/** The resolv.conf that points the resolver at `addresses` (the stack's DNS addresses). */
export function renderResolvConf(addresses: readonly string[]): string {
  const lines = ['# Written by tun2socks --set-dns; the original is restored when it stops.'];
  for (const a of addresses) lines.push(`nameserver ${a}`);
  return `${lines.join('\n')}\n`;
}

/** The nameservers of a resolv.conf text, in order (IPv6 zones like `%eth0` dropped). */
export function nameservers(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^\s*nameserver\s+([^\s#;]+)/.exec(line);
    if (m !== null) out.push(m[1]!.replace(/%.*$/, ''));
  }
  return out;
}
