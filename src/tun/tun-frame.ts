/**
 * What travels in front of every packet on a TUN fd (Documentation/networking/tuntap.rst):
 * `struct tun_pi` (4 bytes) unless the fd has IFF_NO_PI, then, with IFF_VNET_HDR, a 10-byte
 * virtio_net_hdr (vnet.ts). TunFrame writes that prefix before an outgoing packet and reads what a
 * received one's says: whether its checksum may be trusted and whether it is a super-segment.
 */
import { RxFlags, type TxMeta } from '../stack/transport.js';
import { TunFlags } from './ioctl.js';
import { emitTxHeader, VIRTIO_NET_HDR_LENGTH, VnetFlags, VnetGso } from './vnet.js';

/** EtherTypes for `struct tun_pi.proto`. */
const ETH_P_IP = 0x0800;
const ETH_P_IPV6 = 0x86dd;

/** In TunFrame.receive's result: the packet is a TCP super-segment (GSO). */
export const FRAME_GSO = 1 << 30;
/** TunFrame.receive's result for a packet that cannot be delivered (a UDP GSO packet). */
export const FRAME_UNDELIVERABLE = -1;

/** The packet prefix of one TUN fd. */
export class TunFrame {
  /** Bytes before the IP packet on the fd: 4 for `struct tun_pi`, plus 10 with a virtio-net header. */
  readonly prefix: number;
  /** Offset of the virtio-net header on the fd (after `struct tun_pi`), or -1 without one. */
  readonly vnetAt: number;
  /** The fd carries `struct tun_pi` (no IFF_NO_PI). */
  readonly #packetInfo: boolean;

  /**
   * The prefix of an fd attached with TUN `flags`, with a virtio-net header when `vnetHdr`; its
   * NEEDS_CSUM is written only when the kernel granted checksum offload (`csum`).
   */
  constructor(
    flags: number,
    vnetHdr: boolean,
    private readonly csum: boolean,
  ) {
    const pi = (flags & TunFlags.IFF_NO_PI) !== 0 ? 0 : 4;
    this.#packetInfo = pi !== 0;
    this.vnetAt = vnetHdr ? pi : -1;
    this.prefix = pi + (vnetHdr ? VIRTIO_NET_HDR_LENGTH : 0);
  }

  /** Writes the packet-info and virtio-net headers into `buf[0, prefix)`, in front of `packet`'s copy. */
  writePrefix(buf: Uint8Array, packet: Uint8Array, meta: TxMeta | undefined): void {
    if (this.#packetInfo) {
      // struct tun_pi { u16 flags; be16 proto }: the kernel takes skb->protocol from proto.
      const proto = packet[0]! >> 4 === 6 ? ETH_P_IPV6 : ETH_P_IP;
      buf[0] = 0;
      buf[1] = 0;
      buf[2] = proto >> 8;
      buf[3] = proto & 0xff;
    }
    if (this.vnetAt >= 0) emitTxHeader(this.csum ? meta : undefined, buf, this.vnetAt);
  }

  /**
   * What the prefix of a packet read at `buf[start]` says: its RxFlags, plus FRAME_GSO for a TCP
   * super-segment, or FRAME_UNDELIVERABLE.
   */
  receive(buf: Uint8Array, start: number): number {
    if (this.vnetAt < 0) return 0;
    const at = start + this.vnetAt;
    // virtio_net_hdr: flags at +0, gso_type at +1 (vnet.ts); the rest is not needed to receive.
    const rxFlags =
      (buf[at]! & (VnetFlags.NEEDS_CSUM | VnetFlags.DATA_VALID)) !== 0 ? RxFlags.CHECKSUM_VERIFIED : 0;
    const gso = buf[at + 1]! & ~VnetGso.ECN;
    if (gso === VnetGso.NONE) return rxFlags;
    // UDP GSO is never requested (no TUN_F_USO*): several datagrams in one, not deliverable.
    if (gso !== VnetGso.TCPV4 && gso !== VnetGso.TCPV6) return FRAME_UNDELIVERABLE;
    return rxFlags | FRAME_GSO;
  }
}
