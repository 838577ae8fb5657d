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

/**
 * Segmentation offload types a transmitted packet may ask for (the values of virtio-net's
 * VIRTIO_NET_HDR_GSO_*, so a TUN device copies them as they are).
 */
export const GsoType = Object.freeze({
  /** A plain packet. */
  NONE: 0,
  /** An IPv4 TCP super-segment for the device to cut into `gsoSize`-byte segments. */
  TCPV4: 1,
  /** An IPv6 TCP super-segment. */
  TCPV6: 4,
});

/**
 * What the stack tells an offload-capable device about one transmitted packet. The stack reuses
 * one instance: every field is valid only during the transmit call. A device without offload
 * ignores it (the stack sends such a device no packet that needs it).
 */
export class TxMeta {
  /** Bytes before the packet in its buffer that the device may overwrite with its own header. */
  headroom = 0;
  /**
   * The transport checksum is left to the device: the field at `csumStart + csumOffset` holds the
   * pseudo-header sum (Linux's CHECKSUM_PARTIAL) and the device sums from `csumStart` to the end.
   */
  needsCsum = false;
  /** Offset of the transport header in the packet (where checksumming starts). */
  csumStart = 0;
  /** Offset of the checksum field from `csumStart`: 16 for TCP, 6 for UDP. */
  csumOffset = 0;
  /** A GsoType value. */
  gsoType = 0;
  /** Payload bytes per segment when `gsoType` is not NONE (the MSS the sender would have used). */
  gsoSize = 0;
  /** IP plus transport header bytes (repeated in every segment). */
  hdrLen = 0;

  /** Marks the packet plain: no checksum or segmentation offload. */
  clear(): void {
    this.needsCsum = false;
    this.csumStart = 0;
    this.csumOffset = 0;
    this.gsoType = GsoType.NONE;
    this.gsoSize = 0;
    this.hdrLen = 0;
  }
}
