/**
 * The UDP layer: every datagram, to any destination, belongs to the flow of its source
 * address:port (the NAT entry of an endpoint-independent, "full cone" mapping, RFC 4787 §4.1).
 * The owner receives each datagram with its flow and destination, and answers through the flow
 * from any remote address. Flows end after an idle timeout (RFC 4787 REQ-5: at least 2 minutes
 * is advised; we default to 60 s like the common tun2socks engines) or, when the table is full,
 * least recently used first. Pure: time comes in as `now`.
 */

import { validateUdp } from '../closed.js';
import type { Icmp } from '../ip/icmp.js';
import type { IpOutput } from '../ip/output.js';
import { sendUnreachable } from '../ip/unreachable.js';
import type { StackStats } from '../stats.js';
import type { IpPacketInfo, TransportHandler } from '../transport.js';
import { pseudoHeaderSum } from '../wire/checksum.js';
import { IpProtocol } from '../wire/ip-protocol.js';
import { UDP_HEADER_LENGTH, UdpDatagram, UdpRepr } from '../wire/udp.js';

/** Bounds of the UDP layer. */
export interface UdpConfig {
  /** A flow without a datagram either way for this long is closed. Default 60 s. */
  readonly idleTimeoutMs: number;
  /** Flows at once; a new flow past it closes the least recently used one. Default 4096. */
  readonly maxFlows: number;
}

/** The documented UDP defaults. */
export const DEFAULT_UDP_CONFIG: UdpConfig = Object.freeze({ idleTimeoutMs: 60_000, maxFlows: 4096 });

/** Why a flow ended. */
export type UdpCloseReason = 'idle' | 'evicted' | 'owner';

/** One client UDP endpoint and its NAT state. */
export class UdpFlowEntry {
  /** Free for the owner (the runtime keeps its flow object here). */
  owner: unknown;
  /** When a datagram last passed either way. */
  lastActive: number;
  /** False once closed. */
  open = true;

  constructor(
    /** The map key. */
    readonly key: number | string,
    /** The client's address (a copy). */
    readonly clientAddress: Uint8Array,
    /** The client's port. */
    readonly clientPort: number,
    now: number,
  ) {
    this.lastActive = now;
  }
}

/** Receives the datagrams of flows; the views are valid only during the call. */
export interface UdpOwner {
  /** A new flow: its first datagram follows at once through `datagram`. */
  opened(flow: UdpFlowEntry): void;
  /** One datagram from the flow's client to `dst`:`dstPort`. */
  datagram(flow: UdpFlowEntry, payload: Uint8Array, dst: Uint8Array, dstPort: number): void;
  /** The flow ended (idle, evicted, or closed by the owner). */
  closed(flow: UdpFlowEntry, reason: UdpCloseReason): void;
}

/** The key of a client endpoint: a number for IPv4 (address * 65536 + port, exact), a string for IPv6. */
function flowKey(addr: Uint8Array, port: number): number | string {
  if (addr.length === 4) {
    return (((addr[0]! << 24) | (addr[1]! << 16) | (addr[2]! << 8) | addr[3]!) >>> 0) * 65536 + port;
  }
  let s = '';
  for (let i = 0; i < 16; i++) s += String.fromCharCode(addr[i]!);
  return s + String.fromCharCode(port);
}

/** UDP for every address: flows to an owner, or Port Unreachable while there is none. */
export class UdpLayer implements TransportHandler {
  /** Receives flows and datagrams; undefined answers every datagram with Port Unreachable. */
  owner: UdpOwner | undefined;
  /** The stack's clock as of the last call. */
  now = 0;
  /** Flows in least-recently-active order (a Map keeps insertion order; activity re-inserts). */
  private readonly flows = new Map<number | string, UdpFlowEntry>();
  private readonly header = new Uint8Array(UDP_HEADER_LENGTH);

  constructor(
    readonly config: UdpConfig,
    private readonly output: IpOutput,
    private readonly icmp: Icmp,
    private readonly stats: StackStats,
  ) {}

  /** Flows open now. */
  get size(): number {
    return this.flows.size;
  }

  /** TransportHandler: one datagram from the device. */
  input(info: IpPacketInfo, payload: Uint8Array, now: number): string | undefined {
    this.now = now;
    const udp = new UdpDatagram(payload);
    const bad = validateUdp(info, udp);
    if (bad !== undefined) return bad;
    const owner = this.owner;
    if (owner === undefined) {
      // RFC 1122 §4.1.3.1: a datagram for a port with no socket gets Port Unreachable.
      if (info.version === 4) {
        this.icmp.errorV4(info.packet, { kind: 'dest-unreachable', code: 3, nextHopMtu: 0 }, now);
      } else {
        this.icmp.errorV6(info.packet, { kind: 'dest-unreachable', code: 4 }, now);
      }
      return 'udp-port-unreachable';
    }
    const srcPort = udp.srcPort;
    const key = flowKey(info.src, srcPort);
    let flow = this.flows.get(key);
    if (flow === undefined) {
      if (this.flows.size >= this.config.maxFlows) {
        const oldest = this.flows.values().next().value as UdpFlowEntry;
        this.stats.udpFlowsEvicted++;
        this.end(oldest, 'evicted');
      }
      flow = new UdpFlowEntry(key, info.src.slice(), srcPort, now);
      this.flows.set(key, flow);
      this.stats.udpFlowsOpened++;
      owner.opened(flow);
      if (!flow.open) return undefined;
    } else {
      this.touch(flow, now);
    }
    this.stats.udpDatagramsIn++;
    owner.datagram(flow, udp.payload, info.dst, udp.dstPort);
    return undefined;
  }

  /**
   * Sends `payload` to the flow's client from `src`:`srcPort` (any address of its family).
   * Returns false when it cannot be sent: a closed flow, another family, or over 65,507 bytes.
   */
  send(flow: UdpFlowEntry, src: Uint8Array, srcPort: number, payload: Uint8Array): boolean {
    if (!flow.open || src.length !== flow.clientAddress.length) return false;
    const length = UDP_HEADER_LENGTH + payload.length;
    if (length > 0xffff - (src.length === 4 ? 20 : 0)) return false;
    const packet = this.output.allocate(src, flow.clientAddress, IpProtocol.UDP, length);
    const datagram = packet.subarray(packet.length - length);
    datagram.set(payload, UDP_HEADER_LENGTH);
    UdpRepr.emit(
      { srcPort, dstPort: flow.clientPort, payloadLength: payload.length },
      datagram,
      pseudoHeaderSum(src, flow.clientAddress, IpProtocol.UDP, length),
    );
    this.touch(flow, this.now);
    this.stats.udpDatagramsOut++;
    this.output.send(packet);
    return true;
  }

  /** ICMP Port Unreachable to the flow's client about a datagram it sent to `dst`:`dstPort`. */
  unreachable(flow: UdpFlowEntry, dst: Uint8Array, dstPort: number): void {
    if (!flow.open || dst.length !== flow.clientAddress.length) return;
    const h = this.header;
    h[0] = flow.clientPort >>> 8;
    h[1] = flow.clientPort & 0xff;
    h[2] = dstPort >>> 8;
    h[3] = dstPort & 0xff;
    h[4] = 0;
    h[5] = UDP_HEADER_LENGTH;
    h[6] = 0;
    h[7] = 0;
    sendUnreachable(this.icmp, this.output, 'port', flow.clientAddress, dst, IpProtocol.UDP, h, this.now);
  }

  /** Ends a flow at the owner's request (the owner's `closed` is called). */
  close(flow: UdpFlowEntry): void {
    if (flow.open) this.end(flow, 'owner');
  }

  /** Closes every flow that has been idle for the timeout. */
  poll(now: number): void {
    this.now = now;
    const idle = this.config.idleTimeoutMs;
    for (const flow of this.flows.values()) {
      if (flow.lastActive + idle > now) break;
      this.stats.udpFlowsExpired++;
      this.end(flow, 'idle');
    }
  }

  /** When the least recently active flow expires, or undefined with no flows. */
  nextDeadline(): number | undefined {
    const first = this.flows.values().next();
    return first.done === true ? undefined : first.value.lastActive + this.config.idleTimeoutMs;
  }

  /** Every open flow, least recently active first. */
  entries(): IterableIterator<UdpFlowEntry> {
    return this.flows.values();
  }

  private touch(flow: UdpFlowEntry, now: number): void {
    // Re-insert only when the time moved, so a burst costs one map update.
    if (flow.lastActive === now) return;
    flow.lastActive = now;
    this.flows.delete(flow.key);
    this.flows.set(flow.key, flow);
  }

  private end(flow: UdpFlowEntry, reason: UdpCloseReason): void {
    flow.open = false;
    this.flows.delete(flow.key);
    this.owner?.closed(flow, reason);
  }
}
