/**
 * The packet device interface shared by the Linux TUN, the in-memory devices and the wrappers
 * (pcap, faults): IP packets in through a sink, IP packets out through a synchronous write.
 */
import type { TxMeta } from '../stack/transport.js';

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
  /** Packets read that were TCP super-segments (virtio-net GSO), each counted once in rxPackets. */
  rxGsoPackets: number;
  /** io_uring submissions that wrote several packets with one system call (txPackets / txBatches: packets per call). */
  txBatches: number;
  /** Packets written as TCP super-segments for the kernel to cut, each counted once in txPackets. */
  txGsoPackets: number;
}

/** What a device's kernel side was granted (capability, not assumption). */
export interface DeviceOffload {
  /** Packets carry a virtio-net header (IFF_VNET_HDR). */
  readonly vnetHdr: boolean;
  /** TCP super-segments may be written (TUN_F_TSO4 | TUN_F_TSO6) and are read as such. */
  readonly tso: boolean;
  /** Checksums may be left to the kernel (TUN_F_CSUM): written packets may be NEEDS_CSUM. */
  readonly csum: boolean;
}

/** No offload: memory, pcap and fault devices, and a TUN without IFF_VNET_HDR. */
export const NO_OFFLOAD: DeviceOffload = Object.freeze({ vnetHdr: false, tso: false, csum: false });

/** A packet device: a TUN, an in-memory pair, or a wrapper (pcap, faults). */
export interface Device {
  readonly name: string;
  readonly mtu: number;
  readonly stats: DeviceStats;
  /** Offload the device grants; absent means NO_OFFLOAD. */
  readonly offload?: DeviceOffload;
  /**
   * Bytes the device writes in front of each packet (its virtio-net header). A caller that leaves
   * that much room before the packet in its buffer, and says so in `TxMeta.headroom`, saves a copy.
   */
  readonly txHeadroom?: number;
  /**
   * How a TUN reads and writes: 'uring' (a drain's reads and a turn's writes each in one io_uring
   * submission; writes go out before the turn ends) or 'plain' (one system call per packet).
   * Absent: in memory.
   */
  readonly ioMode?: 'uring' | 'plain';
  /** Why a TUN does less than its ioMode asked, when it does (e.g. `io_uring_setup refused (EPERM)`). */
  readonly ioNote?: string | undefined;
  /** Starts delivering received packets to `sink`. */
  start(sink: PacketSink): void;
  /**
   * Writes one IP packet: synchronously, or copied into a batch that goes out before this turn of
   * the event loop ends (ioMode 'uring'). Returns false when dropped (counted); a batched write
   * that fails later is counted then. The caller may reuse `packet` after return. `meta` (offload requests) is honoured only as far as `offload` grants.
   */
  write(packet: Uint8Array, meta?: TxMeta): boolean;
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
    rxGsoPackets: 0,
    txGsoPackets: 0,
    txBatches: 0,
  };
}
