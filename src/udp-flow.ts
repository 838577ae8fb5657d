/**
 * A client's UDP socket seen through the TUN, as an EventEmitter: every datagram from one client
 * address:port, to any destination, arrives on one flow (endpoint-independent NAT), and replies
 * go back through it from any remote address (full cone).
 */
import { EventEmitter } from 'node:events';
import type { UdpCloseReason, UdpFlowEntry, UdpLayer } from './stack/udp/udp-layer.js';
import { formatAddress, parseAddress } from './stack/wire/address.js';

/** An address string (dotted IPv4 or IPv6 text) and a port. */
export interface UdpEndpoint {
  readonly address: string;
  readonly port: number;
}

/** What a flow needs from the runtime that drives its stack. */
export interface UdpDriver {
  /** Refreshes the core's clock before an owner call. */
  enter(): void;
  /** The stack's UDP layer. */
  readonly udp: UdpLayer;
}

/** The events of a UdpFlow. */
export interface UdpFlowEvents {
  /** One datagram from the client; `payload` is a copy the listener owns. */
  datagram: [payload: Buffer, destination: UdpEndpoint];
  /** The flow ended (once): idle timeout, evicted from a full table, or closed by its owner. */
  close: [reason: UdpCloseReason];
}

/**
 * One client UDP endpoint: emits 'datagram' (payload, destination) and 'close' (reason). The
 * runtime closes it after the stack's UDP idle timeout (default 60 s) without a datagram either
 * way, or when the flow table is full (least recently used first).
 */
export class UdpFlow extends EventEmitter<UdpFlowEvents> {
  /** The client's address. */
  readonly clientAddress: string;
  /** The client's port. */
  readonly clientPort: number;
  /** 'IPv4' or 'IPv6'. */
  readonly family: 'IPv4' | 'IPv6';
  /** Datagrams and bytes from the client, and to it. */
  datagramsIn = 0;
  bytesIn = 0;
  datagramsOut = 0;
  bytesOut = 0;
  private lastFrom = '';
  private lastFromBytes: Uint8Array | undefined;

  constructor(
    /** The core's flow (exposed for diagnostics). */
    readonly entry: UdpFlowEntry,
    private readonly driver: UdpDriver,
  ) {
    super();
    entry.owner = this;
    this.clientAddress = formatAddress(entry.clientAddress);
    this.clientPort = entry.clientPort;
    this.family = entry.clientAddress.length === 4 ? 'IPv4' : 'IPv6';
  }

  /** True once the flow ended. */
  get closed(): boolean {
    return !this.entry.open;
  }

  /**
   * Sends `payload` to the client as if from `from` (any address of the flow's family).
   * False when dropped: a closed flow, another family, a bad address, or too large for UDP.
   */
  send(payload: Uint8Array, from: UdpEndpoint): boolean {
    if (!this.entry.open) return false;
    const src = this.address(from.address);
    if (src === undefined || !Number.isInteger(from.port) || from.port < 0 || from.port > 0xffff)
      return false;
    this.driver.enter();
    if (!this.driver.udp.send(this.entry, src, from.port, payload)) return false;
    this.datagramsOut++;
    this.bytesOut += payload.length;
    return true;
  }

  /** ICMP Port Unreachable to the client about a datagram it sent to `destination`. */
  unreachable(destination: UdpEndpoint): void {
    const dst = this.address(destination.address);
    if (dst === undefined || !this.entry.open) return;
    this.driver.enter();
    this.driver.udp.unreachable(this.entry, dst, destination.port);
  }

  /** Ends the flow now ('close' is emitted). A later datagram from the client opens a new flow. */
  close(): void {
    if (!this.entry.open) return;
    this.driver.enter();
    this.driver.udp.close(this.entry);
  }

  /** The runtime delivers one datagram (the views are valid only during the call). */
  deliver(payload: Uint8Array, dst: Uint8Array, dstPort: number): void {
    this.datagramsIn++;
    this.bytesIn += payload.length;
    this.emit('datagram', Buffer.from(payload), { address: formatAddress(dst), port: dstPort });
  }

  /** Parses a source address, remembering the last one (replies mostly come from one remote). */
  private address(text: string): Uint8Array | undefined {
    if (text === this.lastFrom) return this.lastFromBytes;
    // A dual-stack socket reports IPv4 remotes as IPv4-mapped IPv6 (RFC 4291 §2.5.5.2).
    const v4 = this.family === 'IPv4' && text.startsWith('::ffff:') && text.includes('.');
    const bytes = parseAddress(v4 ? text.slice(7) : text);
    if (bytes === undefined || bytes.length !== this.entry.clientAddress.length) return undefined;
    this.lastFrom = text;
    this.lastFromBytes = bytes;
    return bytes;
  }
}
