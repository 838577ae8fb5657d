/**
 * The stack: one object that takes IP packets in (`input`) and sends IP packets out (`transmit`),
 * impersonating every remote host. Pure and deterministic: time comes in as `now` (milliseconds on
 * any monotonic clock), randomness from the injected source, and `nextDeadline()` tells the
 * runtime when to call `poll()` next, so one real timer serves every connection.
 */
import { Icmp } from './ip/icmp.js';
import { IpLayer, type Transports } from './ip/ip-layer.js';
import { IpOutput, type Transmit } from './ip/output.js';
import { Reassembler } from './ip/reassembly.js';
import {
  type IpOptions,
  resolveIpOptions,
  resolveTcpConfig,
  resolveUdpConfig,
  type StackOptions,
} from './options.js';
import type { RandomSource } from './random.js';
import { StackStats } from './stats.js';
import { TcpLayer } from './tcp/tcp-layer.js';
import { IpPacketInfo } from './transport.js';
import { UdpLayer } from './udp/udp-layer.js';

/** What a `Stack` is built from. */
export interface StackConfig {
  /** Receives every packet the stack sends; the bytes are valid only during the call. */
  readonly transmit: Transmit;
  /** Uniform 32-bit random numbers (ISS, identifications). */
  readonly random: RandomSource;
  /** Bounds and switches; see options.ts for the defaults. */
  readonly options?: StackOptions;
}

/** A userspace IPv4/IPv6 stack terminating traffic for any destination. */
export class Stack {
  /** Counters, including drops by reason. */
  readonly stats = new StackStats();
  /** The resolved options. */
  readonly options: IpOptions;
  /** Output: packet building and fragmentation, shared with the transports. */
  readonly output: IpOutput;
  /** ICMP echo and error generation, shared with the transports. */
  readonly icmp: Icmp;
  /** The TCP layer: set `tcp.listening` and take its events to terminate connections. */
  readonly tcp: TcpLayer;
  /** The UDP layer: set `udp.owner` to receive flows (until then every port is closed). */
  readonly udp: UdpLayer;
  private readonly reassembler: Reassembler;
  private readonly transports: Transports;
  private readonly ip: IpLayer;

  constructor(config: StackConfig) {
    this.options = resolveIpOptions(config.options);
    const o = this.options;
    this.output = new IpOutput(config.transmit, o, this.stats, config.random);
    this.icmp = new Icmp(this.output, o, this.stats);
    this.reassembler = new Reassembler({
      maxDatagrams: o.reassemblyMaxDatagrams,
      maxBytes: o.reassemblyMaxBytes,
      maxFragments: o.reassemblyMaxFragments,
      timeoutV4Ms: o.reassemblyTimeoutV4Ms,
      timeoutV6Ms: o.reassemblyTimeoutV6Ms,
    });
    this.tcp = new TcpLayer(
      resolveTcpConfig(config.options?.tcp),
      this.output,
      this.stats,
      config.random,
      this.icmp,
    );
    this.udp = new UdpLayer(resolveUdpConfig(config.options?.udp), this.output, this.icmp, this.stats);
    this.transports = { tcp: this.tcp, udp: this.udp };
    this.ip = new IpLayer(this.stats, this.icmp, this.reassembler, this.transports, new IpPacketInfo());
  }

  /** Takes one IP packet from the device. `packet` may be reused by the caller after return. */
  input(packet: Uint8Array, now: number, rxFlags = 0): void {
    this.stats.rxPackets++;
    this.stats.rxBytes += packet.length;
    this.ip.input(packet, now, rxFlags);
  }

  /** Sends what the transports queued during input or owner calls: once per batch. */
  flush(now: number): void {
    this.tcp.flush(now);
  }

  /** Runs every timer due at `now`. */
  poll(now: number): void {
    this.ip.expire(now);
    this.tcp.poll(now);
    this.udp.poll(now);
  }

  /** When `poll` must run next, or undefined when no timer is pending. */
  nextDeadline(): number | undefined {
    let deadline = this.reassembler.nextDeadline();
    for (const d of [this.tcp.nextDeadline(), this.udp.nextDeadline()]) {
      if (d !== undefined && (deadline === undefined || d < deadline)) deadline = d;
    }
    return deadline;
  }

  /** Datagrams currently held in reassembly, and their bytes. */
  reassemblyUsage(): { datagrams: number; bytes: number } {
    return { datagrams: this.reassembler.size, bytes: this.reassembler.heldBytes };
  }
}
