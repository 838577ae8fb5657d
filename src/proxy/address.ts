/**
 * Address text outside the packet path, through the `ip-address` package: validation of proxy
 * hosts and one canonical spelling of an endpoint, so that `fd00:0::1`, `[fd00::1]` and
 * `::ffff:198.18.0.1` compare equal to what the stack reports.
 */
import { Address4, Address6 } from 'ip-address';

/** True for an IPv6 literal (no brackets, no zone). */
export function isIpv6Literal(host: string): boolean {
  return host.includes(':') && Address6.isValid(host) && !host.includes('%');
}

/** An IP literal in canonical text (RFC 5952 for IPv6, IPv4-mapped as IPv4); other hosts lowercased. */
export function canonicalHost(host: string): string {
  const bare = host.startsWith('[') && host.endsWith(']') ? host.slice(1, -1) : host;
  if (Address4.isValid(bare) && /^\d+\.\d+\.\d+\.\d+$/.test(bare)) return new Address4(bare).correctForm();
  if (isIpv6Literal(bare)) {
    const a = new Address6(bare);
    return a.is4() ? a.to4().correctForm() : a.correctForm();
  }
  return bare.toLowerCase();
}
