/**
 * ICMP and ICMPv6 as the impersonated destination host: echo replies for any address
 * (RFC 792, RFC 4443 §4.2) and error messages with the RFCs' rules on when not to send them
 * (RFC 1122 §3.2.2, RFC 4443 §2.4) and a token-bucket rate limit (RFC 4443 §2.4(f)).
 */

import type { IpOptions } from '../options.js';
import type { StackStats } from '../stats.js';
import { isBroadcastV4, isLoopback, isMulticast, isUnspecified } from '../wire/address.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import { Icmpv4Packet, Icmpv4Repr, Icmpv4Type } from '../wire/icmpv4.js';
import { Icmpv6Packet, Icmpv6Repr, Icmpv6Type } from '../wire/icmpv6.js';
import { IpProtocol } from '../wire/ip-protocol.js';
import { Ipv4Packet } from '../wire/ipv4.js';
import { IPV6_MIN_MTU, Ipv6Packet } from '../wire/ipv6.js';
import { IpOutput } from './output.js';

/** RFC 1812 §4.3.2.3: an ICMPv4 error quotes as much as fits in 576 bytes. */
const ICMPV4_ERROR_MAX = 576;
const ICMP_HEADER_LENGTH = 8;

/** An ICMPv4 error to send about a packet we received. */
export type Icmpv4Error =
  | { readonly kind: 'dest-unreachable'; readonly code: number; readonly nextHopMtu: number }
  | { readonly kind: 'time-exceeded'; readonly code: number }
  | { readonly kind: 'parameter-problem'; readonly pointer: number };

/** An ICMPv6 error to send about a packet we received. */
export type Icmpv6Error =
  | { readonly kind: 'dest-unreachable'; readonly code: number }
  | { readonly kind: 'packet-too-big'; readonly mtu: number }
  | { readonly kind: 'time-exceeded'; readonly code: number }
  | { readonly kind: 'parameter-problem'; readonly code: number; readonly pointer: number };

/** Echo replies and error messages of the stack. */
export class Icmp {
  private tokens: number;
  private refilledAt: number | undefined;

  constructor(
    private readonly output: IpOutput,
    private readonly options: IpOptions,
    private readonly stats: StackStats,
  ) {
    this.tokens = options.icmpErrorBurst;
  }

  /** Handles an ICMPv4 message addressed to any host we impersonate. */
  inputV4(ip: Ipv4Packet, message: Uint8Array): void {
    const icmp = new Icmpv4Packet(message);
    const bad = icmp.check();
    if (bad !== undefined) return this.stats.drop(bad);
    if (!icmp.verifyChecksum()) return this.stats.drop('icmpv4-bad-checksum');
    this.stats.rxIcmp++;
    if (icmp.type !== Icmpv4Type.ECHO_REQUEST || icmp.code !== 0) {
      // Errors about packets we sent, replies, and the rest: nothing above us wants them yet.
      return this.stats.drop('icmpv4-unhandled-type');
    }
    if (!this.options.icmpEcho) return this.stats.drop('icmpv4-echo-disabled');
    const data = icmp.data;
    const reply: Icmpv4Repr = {
      kind: 'echo-reply',
      identifier: icmp.identifier,
      sequence: icmp.sequence,
      data,
    };
    const length = Icmpv4Repr.length(reply);
    const packet = this.output.allocate(ip.dst, ip.src, IpProtocol.ICMP, length);
    Icmpv4Repr.emit(reply, packet.subarray(packet.length - length));
    this.stats.echoReplies++;
    this.output.send(packet);
  }

  /** Handles an ICMPv6 message; `message` is the upper-layer part of `ip`. */
  inputV6(ip: Ipv6Packet, message: Uint8Array): void {
    const icmp = new Icmpv6Packet(message);
    const bad = icmp.check();
    if (bad !== undefined) return this.stats.drop(bad);
    if (!icmp.verifyChecksum(pseudoHeaderSum(ip.src, ip.dst, IpProtocol.ICMPV6, message.length))) {
      return this.stats.drop('icmpv6-bad-checksum');
    }
    this.stats.rxIcmp++;
    if (icmp.type !== Icmpv6Type.ECHO_REQUEST || icmp.code !== 0) {
      return this.stats.drop('icmpv6-unhandled-type');
    }
    if (!this.options.icmpEcho) return this.stats.drop('icmpv6-echo-disabled');
    const reply: Icmpv6Repr = {
      kind: 'echo-reply',
      identifier: icmp.identifier,
      sequence: icmp.sequence,
      data: icmp.data,
    };
    const length = Icmpv6Repr.length(reply);
    const packet = this.output.allocate(ip.dst, ip.src, IpProtocol.ICMPV6, length);
    Icmpv6Repr.emit(
      reply,
      packet.subarray(packet.length - length),
      pseudoHeaderSum(ip.dst, ip.src, IpProtocol.ICMPV6, length),
    );
    this.stats.echoReplies++;
    this.output.send(packet);
  }

  /**
   * Sends an ICMPv4 error about `invoking` (a whole IPv4 packet we received), from the host it was
   * addressed to. Suppressed where RFC 1122 §3.2.2 forbids it, and rate limited.
   */
  errorV4(invoking: Uint8Array, error: Icmpv4Error, now: number): void {
    const ip = new Ipv4Packet(invoking);
    if (ip.check() !== undefined) return;
    // RFC 1122 §3.2.2: never about an ICMP error, a non-initial fragment, a broadcast or
    // multicast destination, or a source that is not one unicast host.
    if (ip.fragmentOffset !== 0) return;
    if (isMulticast(ip.dst) || isBroadcastV4(ip.dst)) return;
    if (isUnspecified(ip.src) || isMulticast(ip.src) || isBroadcastV4(ip.src) || isLoopback(ip.src)) return;
    if (ip.protocol === IpProtocol.ICMP) {
      const type = ip.payload.length > 0 ? ip.payload[0]! : -1;
      if (!isIcmpv4Query(type)) return;
    }
    if (!this.takeToken(now)) return;
    const quoted = invoking.subarray(
      0,
      Math.min(ip.totalLength, ICMPV4_ERROR_MAX - IpOutput.headerLength(ip.src) - ICMP_HEADER_LENGTH),
    );
    const repr: Icmpv4Repr =
      error.kind === 'dest-unreachable'
        ? { kind: 'dest-unreachable', code: error.code, nextHopMtu: error.nextHopMtu, invoking: quoted }
        : error.kind === 'time-exceeded'
          ? { kind: 'time-exceeded', code: error.code, invoking: quoted }
          : { kind: 'parameter-problem', pointer: error.pointer, invoking: quoted };
    const length = Icmpv4Repr.length(repr);
    const packet = this.output.allocate(ip.dst, ip.src, IpProtocol.ICMP, length);
    Icmpv4Repr.emit(repr, packet.subarray(packet.length - length));
    this.stats.icmpErrorsSent++;
    this.output.send(packet);
  }

  /**
   * Sends an ICMPv6 error about `invoking` (a whole IPv6 packet we received), from the host it was
   * addressed to. Suppressed where RFC 4443 §2.4(e) forbids it, and rate limited.
   */
  errorV6(invoking: Uint8Array, error: Icmpv6Error, now: number, upperProtocol = -1, upperOffset = 0): void {
    const ip = new Ipv6Packet(invoking);
    if (ip.check() !== undefined) return;
    if (isUnspecified(ip.src) || isMulticast(ip.src)) return;
    // RFC 4443 §2.4(e.3) allows a few errors about multicast packets, but they must come from a
    // unicast address of ours, and we own none: we only impersonate the unicast destination.
    if (isMulticast(ip.dst)) return;
    // RFC 4443 §2.4(e.1, e.2): never about an ICMPv6 error or a redirect.
    if (upperProtocol === IpProtocol.ICMPV6 && upperOffset < invoking.length) {
      const type = invoking[upperOffset]!;
      if (type < 128 || type === Icmpv6Type.REDIRECT) return;
    }
    if (!this.takeToken(now)) return;
    // RFC 4443 §2.4(c): quote as much as fits in the minimum MTU.
    const quoted = invoking.subarray(0, Math.min(invoking.length, IPV6_MIN_MTU - 40 - ICMP_HEADER_LENGTH));
    const repr: Icmpv6Repr =
      error.kind === 'dest-unreachable'
        ? { kind: 'dest-unreachable', code: error.code, invoking: quoted }
        : error.kind === 'packet-too-big'
          ? { kind: 'packet-too-big', mtu: error.mtu, invoking: quoted }
          : error.kind === 'time-exceeded'
            ? { kind: 'time-exceeded', code: error.code, invoking: quoted }
            : { kind: 'parameter-problem', code: error.code, pointer: error.pointer, invoking: quoted };
    const length = Icmpv6Repr.length(repr);
    const packet = this.output.allocate(ip.dst, ip.src, IpProtocol.ICMPV6, length);
    Icmpv6Repr.emit(
      repr,
      packet.subarray(packet.length - length),
      pseudoHeaderSum(ip.dst, ip.src, IpProtocol.ICMPV6, length),
    );
    this.stats.icmpErrorsSent++;
    this.output.send(packet);
  }

  /** RFC 4443 §2.4(f) token bucket shared by both families. */
  private takeToken(now: number): boolean {
    const rate = this.options.icmpErrorRatePerSec;
    if (this.refilledAt !== undefined && now > this.refilledAt) {
      this.tokens = Math.min(
        this.options.icmpErrorBurst,
        this.tokens + ((now - this.refilledAt) * rate) / 1000,
      );
    }
    this.refilledAt = now;
    if (this.tokens < 1) {
      this.stats.icmpErrorsRateLimited++;
      return false;
    }
    this.tokens -= 1;
    return true;
  }
}

/** ICMPv4 query (informational) types, about which errors may be sent (RFC 1122 §3.2.2). */
function isIcmpv4Query(type: number): boolean {
  return type === 0 || type === 8 || type === 13 || type === 14 || type === 15 || type === 16;
}
