/**
 * The runtime: drives the pure stack with a real clock, one real timer and a device. It is the
 * device's PacketSink: every received packet goes to `stack.input`, and after each drained batch
 * the single timer is re-armed for the stack's next deadline.
 */

import { randomFillSync } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { BusyPoll, type BusyPollSetting } from './busy-poll.js';
import type { RandomSource } from './stack/random.js';
import { Stack, type StackConfig } from './stack/stack.js';
import type { TcpConnection, TcpRejectHow } from './stack/tcp/connection.js';
import { TcpEvent } from './stack/tcp/state.js';
import type { UdpCloseReason, UdpFlowEntry, UdpLayer, UdpOwner } from './stack/udp/udp-layer.js';
import { formatAddress, parseAddress } from './stack/wire/address.js';
import { type SocketDriver, TcpSocket } from './tcp-socket.js';
import type { Device, PacketSink } from './tun/device.js';
import { type UdpDriver, type UdpEndpoint, UdpFlow } from './udp-flow.js';

/**
 * A TCP connection request: a SYN arrived for `localAddress:localPort` (any address: the stack
 * impersonates it). Decide before the SYN-ACK goes out: `accept()` completes the handshake and
 * returns the socket; `reject()` answers with RST (the client sees ECONNREFUSED) or silence.
 * Retransmitted SYNs are absorbed while the decision is pending.
 */
export class TcpRequest {
  /** The client's address. */
  readonly remoteAddress: string;
  /** The client's port. */
  readonly remotePort: number;
  /** The destination the client asked for. */
  readonly localAddress: string;
  /** The destination port. */
  readonly localPort: number;
  /** 'IPv4' or 'IPv6'. */
  readonly family: 'IPv4' | 'IPv6';

  /** Created on first use of `signal`. */
  private abandon: AbortController | undefined;
  private isAbandoned = false;
  /**
   * Called once when the request ends undecided (as `signal` aborts): a cheaper hook than the
   * signal for an owner that must stop work (an AbortController costs microseconds per SYN).
   */
  onAbandon: (() => void) | undefined;

  constructor(
    private readonly connection: TcpConnection,
    private readonly driver: SocketDriver,
  ) {
    connection.owner = this;
    this.remoteAddress = formatAddress(connection.remoteAddress);
    this.remotePort = connection.remotePort;
    this.localAddress = formatAddress(connection.localAddress);
    this.localPort = connection.localPort;
    this.family = connection.remoteAddress.length === 4 ? 'IPv4' : 'IPv6';
  }

  /** False once the client gave up (RST) or the decision timed out. */
  get pending(): boolean {
    return this.connection.state === 'SYN-PENDING';
  }

  /** Aborted when the request ends undecided (the client gave up, or the decision timed out): stop dialing. */
  get signal(): AbortSignal {
    if (this.abandon === undefined) {
      this.abandon = new AbortController();
      if (this.isAbandoned) this.abandon.abort();
    }
    return this.abandon.signal;
  }

  /** The runtime saw the connection close while this request owned it. */
  ended(): void {
    if (this.isAbandoned) return;
    this.isAbandoned = true;
    this.abandon?.abort();
    const hook = this.onAbandon;
    this.onAbandon = undefined;
    hook?.();
  }

  /** Sends the SYN-ACK; the returned socket carries the connection. */
  accept(): TcpSocket {
    this.driver.enter();
    const socket = new TcpSocket(this.connection, this.driver);
    this.connection.accept();
    this.driver.kick();
    return socket;
  }

  /**
   * Refuses: 'rst' (default) like a closed port (ECONNREFUSED), 'drop' like a silent firewall,
   * 'net-unreachable' / 'host-unreachable' as an ICMP error (ENETUNREACH / EHOSTUNREACH).
   */
  reject(how: TcpRejectHow = 'rst'): void {
    this.driver.enter();
    this.connection.reject(how);
    this.driver.kick();
  }
}

/** Called for each TCP connection request. */
export type TcpRequestHandler = (request: TcpRequest) => void;

/** Called for each new UDP flow, before its first datagram is emitted. */
export type UdpFlowHandler = (flow: UdpFlow) => void;

/** A RandomSource drawing from the operating system's CSPRNG, 1024 values per refill. */
export function cryptoRandom(): RandomSource {
  const pool = new Uint32Array(1024);
  let next = pool.length;
  return () => {
    if (next === pool.length) {
      randomFillSync(pool);
      next = 0;
    }
    return pool[next++]!;
  };
}

/** Options of a runtime: the stack's config less what the runtime supplies. */
export type RuntimeOptions = Omit<StackConfig, 'transmit' | 'random'> & {
  readonly random?: RandomSource;
  /** Busy polling after each packet (see busy-poll.ts): 'auto' (default), or a fixed window in ms (0: off). */
  readonly busyPoll?: BusyPollSetting;
};

/** Joins a device and a stack, with the one timer the stack needs. */
export class StackRuntime implements PacketSink, SocketDriver, UdpDriver {
  /** The stack this runtime drives. */
  readonly stack: Stack;
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Number.POSITIVE_INFINITY;
  private closed = false;
  private kicked = false;
  /** Keeps the loop awake for a moment after packets (busy polling). */
  readonly busy: BusyPoll;
  private tcpHandler: TcpRequestHandler | undefined;
  private udpHandler: UdpFlowHandler | undefined;
  private readonly udpOwner: UdpOwner = {
    opened: (entry: UdpFlowEntry) => {
      const flow = new UdpFlow(entry, this);
      this.udpHandler?.(flow);
    },
    datagram: (entry: UdpFlowEntry, payload: Uint8Array, dst: Uint8Array, dstPort: number) => {
      (entry.owner as UdpFlow).deliver(payload, dst, dstPort);
    },
    closed: (entry: UdpFlowEntry, reason: UdpCloseReason) => {
      (entry.owner as UdpFlow).emit('close', reason);
    },
  };
  private readonly dispatch = (c: TcpConnection, bits: number): void => {
    if ((bits & TcpEvent.SYN) !== 0 && c.state === 'SYN-PENDING') {
      if (this.tcpHandler === undefined) c.reject('rst');
      else this.tcpHandler(new TcpRequest(c, this));
    }
    const owner = c.owner;
    if (owner instanceof TcpSocket) owner.onCoreEvents(bits);
    else if (owner instanceof TcpRequest && (bits & TcpEvent.CLOSED) !== 0) {
      c.owner = undefined;
      owner.ended();
    }
  };

  constructor(
    readonly device: Device,
    options: RuntimeOptions = {},
  ) {
    // Offload as far as the device grants it (options may turn it off, never on).
    const offload = device.offload;
    const { busyPoll, ...config } = options;
    const given = config.options;
    const busy = new BusyPoll(busyPoll ?? 'auto');
    this.busy = busy;
    this.stack = new Stack({
      ...config,
      options: {
        mtu: device.mtu,
        txHeadroom: device.txHeadroom ?? 0,
        ...given,
        tso: (offload?.tso ?? false) && given?.tso !== false,
        txChecksumOffload: (offload?.csum ?? false) && given?.txChecksumOffload !== false,
      },
      random: config.random ?? cryptoRandom(),
      transmit: (packet, meta) => {
        device.write(packet, meta);
        busy.touch();
      },
    });
  }

  /** Starts reading the device. */
  start(): void {
    this.device.start(this);
  }

  /** Terminates TCP: every SYN becomes a request for `handler` (without one, SYNs get RST). */
  onTcpRequest(handler: TcpRequestHandler | undefined): void {
    this.tcpHandler = handler;
    this.stack.tcp.listening = handler !== undefined;
  }

  /**
   * Terminates UDP: every new client endpoint becomes a flow for `handler` (without one, every
   * datagram is answered with ICMP Port Unreachable). Flows open at the time are closed.
   */
  onUdpFlow(handler: UdpFlowHandler | undefined): void {
    this.udpHandler = handler;
    const udp = this.stack.udp;
    if (handler === undefined) {
      this.enter();
      for (const entry of [...udp.entries()]) udp.close(entry);
      udp.owner = undefined;
    } else {
      udp.owner = this.udpOwner;
    }
    this.schedule();
  }

  /**
   * Opens a TCP connection from `local` to `remote` (an active open by the stack itself): for
   * in-memory clients, simulations and tests. The socket emits 'connect' once established.
   * Throws on a bad address, a tuple in use or a full table.
   */
  connect(local: UdpEndpoint, remote: UdpEndpoint): TcpSocket {
    const src = parseAddress(local.address);
    const dst = parseAddress(remote.address);
    if (src === undefined || dst === undefined || src.length !== dst.length) {
      throw new TypeError(`connect: bad or mixed-family addresses ${local.address} -> ${remote.address}`);
    }
    this.enter();
    const c = this.stack.tcp.connect(src, local.port, dst, remote.port, this.now());
    if (c === undefined)
      throw new Error(`connect: ${local.address}:${local.port} is in use or the table is full`);
    const socket = new TcpSocket(c, this);
    socket.activeOpen = true;
    this.kick();
    return socket;
  }

  /** UdpDriver: the stack's UDP layer. */
  get udp(): UdpLayer {
    return this.stack.udp;
  }

  /** SocketDriver/UdpDriver: refresh the core's clock before an owner call. */
  enter(): void {
    const now = this.now();
    this.stack.tcp.now = now;
    this.stack.udp.now = now;
  }

  /** SocketDriver: flush output and deliver events at the end of this turn (coalescing calls). */
  kick(): void {
    if (this.kicked || this.closed) return;
    this.kicked = true;
    queueMicrotask(() => {
      this.kicked = false;
      this.service();
    });
  }

  /** Flushes output, delivers events until both are quiet, and re-arms the timer. */
  private service(): void {
    if (this.closed) return;
    const tcp = this.stack.tcp;
    // Events first: a new connection's request reaches its owner (who starts the upstream dial)
    // before this batch's output is written, each TUN write costing tens of microseconds (it runs
    // the client's receive path); whatever the owners write goes out in the same flush.
    for (let round = 0; round < 64; round++) {
      if (tcp.hasEvents()) tcp.takeEvents(this.dispatch);
      this.stack.flush(this.now());
      if (!tcp.hasEvents()) break;
    }
    this.schedule();
  }

  /** Milliseconds on the monotonic clock the stack runs on. */
  now(): number {
    return performance.now();
  }

  /** PacketSink: one packet from the device. */
  receive(packet: Uint8Array, rxFlags: number): void {
    this.busy.touch();
    this.stack.input(packet, this.now(), rxFlags);
  }

  /** PacketSink: the end of a batch: one flush of output (one ACK per batch), events, timer. */
  flush(): void {
    this.service();
  }

  /** Re-arms the single timer for the stack's earliest deadline. Call after any call into the stack. */
  schedule(): void {
    if (this.closed) return;
    const deadline = this.stack.nextDeadline();
    if (deadline === undefined) {
      this.cancelTimer();
      return;
    }
    if (this.timer !== undefined && this.timerAt <= deadline) return;
    this.cancelTimer();
    this.timerAt = deadline;
    this.timer = setTimeout(
      () => {
        this.timer = undefined;
        this.timerAt = Number.POSITIVE_INFINITY;
        // Node runs timers before I/O in each loop turn: let packets already waiting on the
        // device (ACKs) in first, so a retransmission timer does not fire on data just acked.
        setImmediate(() => {
          if (this.closed) return;
          this.stack.poll(this.now());
          this.service();
        });
      },
      Math.max(0, Math.ceil(deadline - this.now())),
    );
    this.timer.unref();
  }

  /** Resets every open TCP connection (RST), closes every UDP flow, stops the timer and closes the device. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.enter();
      for (const entry of [...this.stack.udp.entries()]) this.stack.udp.close(entry);
      for (const c of [...this.stack.tcp.connections()]) c.abort();
      this.stack.flush(this.now());
      this.stack.tcp.takeEvents(this.dispatch);
    }
    this.closed = true;
    this.busy.stop();
    this.cancelTimer();
    await this.device.close();
  }

  private cancelTimer(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerAt = Number.POSITIVE_INFINITY;
  }
}
