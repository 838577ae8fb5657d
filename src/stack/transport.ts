/**
 * The interface between the IP layer and the transport protocols above it (TCP, UDP).
 */

/** Receive flags from the device: bits set by offload-capable devices. */
export const RxFlags = Object.freeze({
  /** The transport checksum was verified (or needs no verification) by the kernel. */
  CHECKSUM_VERIFIED: 1,
});

/**
 * What the IP layer tells a transport handler about one packet. The stack reuses one instance:
 * every field is valid only during the handler call (copy what you keep).
 */
export class IpPacketInfo {
  /** 4 or 6. */
  version: 4 | 6 = 4;
  /** Source address (a view into `packet`). */
  src: Uint8Array = new Uint8Array(4);
  /** Destination address: the host we impersonate (a view into `packet`). */
  dst: Uint8Array = new Uint8Array(4);
  /** The whole IP packet, to quote in an ICMP error. */
  packet: Uint8Array = new Uint8Array(0);
  /** Offset of the transport header within `packet`. */
  transportOffset = 0;
  /** RxFlags bits of the packet. */
  rxFlags = 0;
}

/** A transport protocol's input: TCP and UDP implement it. */
export interface TransportHandler {
  /**
   * Handles one transport-layer message (`payload` is the TCP segment or UDP datagram, a view
   * into `info.packet`). Returns a drop reason to count, or undefined when the packet was taken.
   */
  input(info: IpPacketInfo, payload: Uint8Array, now: number): string | undefined;
}
