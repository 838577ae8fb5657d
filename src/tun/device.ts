/**
 * The packet device interface shared by the Linux TUN, the in-memory devices and the wrappers
 * (pcap, faults): IP packets in through a sink, IP packets out through a synchronous write.
 */

/** Receives packets from a device. */
export interface PacketSink {
  /** One packet (`rxFlags`: the stack's RxFlags bits). `packet` is valid only during this call: the device reuses its buffer. */
  receive(packet: Uint8Array, rxFlags: number): void;
  /** Called after each drained batch of receive() calls: flush coalesced output (e.g. one ACK per batch). */
  flush(): void;
}

/** Counters every device keeps. */
export interface DeviceStats {
  rxPackets: number;
  rxBytes: number;
  txPackets: number;
  txBytes: number;
  /** Writes dropped because the device queue was full (EAGAIN/ENOBUFS). */
  txDropped: number;
  txErrors: number;
  rxErrors: number;
  /** Times the reader woke up to drain (packets / wakeups = mean batch size). */
  rxWakeups: number;
}

/** A packet device: a TUN, an in-memory pair, or a wrapper (pcap, faults). */
export interface Device {
  readonly name: string;
  readonly mtu: number;
  readonly stats: DeviceStats;
  /** Starts delivering received packets to `sink`. */
  start(sink: PacketSink): void;
  /** Writes one IP packet synchronously. Returns false when dropped (counted). The caller may reuse `packet` after return. */
  write(packet: Uint8Array): boolean;
  /** Stops reading and releases the device. Idempotent. */
  close(): Promise<void>;
}

/** A zeroed DeviceStats. */
export function newDeviceStats(): DeviceStats {
  return {
    rxPackets: 0,
    rxBytes: 0,
    txPackets: 0,
    txBytes: 0,
    txDropped: 0,
    txErrors: 0,
    rxErrors: 0,
    rxWakeups: 0,
  };
}
