/**
 * Fragment reassembly for IPv4 (RFC 791 §3.2) and IPv6 (RFC 8200 §4.5), with bounded memory.
 *
 * Version-agnostic: the caller names the datagram with a key (addresses, protocol, identification)
 * and hands in each fragment's offset, more-fragments flag and data; for the fragment at offset 0
 * it also hands in the header that precedes the fragmentable part. Overlapping fragments discard
 * the whole datagram (RFC 5722, and Linux does the same for IPv4 since 2018); an exact duplicate is
 * ignored, as Linux does, since networks duplicate packets.
 *
 * Bounds: datagrams at once (the oldest is evicted), bytes held in all, fragments per datagram, and
 * a timeout per datagram from its first fragment.
 */

/** Why a fragment or its datagram was dropped. */
export type ReassemblyDrop =
  | 'frag-overlap'
  | 'frag-duplicate'
  | 'frag-inconsistent-length'
  | 'frag-too-many'
  | 'frag-over-memory'
  | 'frag-empty'
  | 'frag-disabled';

/** A completed datagram: the first fragment's header and the joined fragmentable part. */
export interface Reassembled {
  /** Copy of the header given with the fragment at offset 0. */
  readonly header: Uint8Array;
  /** The joined data, `totalLength` bytes. */
  readonly payload: Uint8Array;
}

/** A datagram that timed out: what an ICMP Time Exceeded (code 1) may quote. */
export interface ExpiredDatagram {
  /** The first fragment's header and data, or undefined when the first fragment never came. */
  readonly firstFragment: Uint8Array | undefined;
  /** True for IPv6 datagrams (the key's family, as given to `add`). */
  readonly ipv6: boolean;
}

interface Fragment {
  readonly offset: number;
  readonly end: number;
  readonly data: Uint8Array;
}

interface Datagram {
  readonly ipv6: boolean;
  readonly expiresAt: number;
  readonly fragments: Fragment[];
  header: Uint8Array | undefined;
  /** Fragmentable-part length, known once the last fragment (MF = 0) arrived; -1 before. */
  totalLength: number;
  received: number;
}

/** Limits of a `Reassembler`. */
export interface ReassemblyLimits {
  readonly maxDatagrams: number;
  readonly maxBytes: number;
  readonly maxFragments: number;
  readonly timeoutV4Ms: number;
  readonly timeoutV6Ms: number;
}

/** The reassembly queues of one stack. Pure: time comes in as `now`. */
export class Reassembler {
  private readonly datagrams = new Map<string, Datagram>();
  private bytes = 0;
  /** Datagrams evicted to make room (counted by the caller's stats through `evicted`). */
  evicted = 0;

  constructor(private readonly limits: ReassemblyLimits) {}

  /** Datagrams currently under reassembly. */
  get size(): number {
    return this.datagrams.size;
  }

  /** Bytes of fragment data currently held. */
  get heldBytes(): number {
    return this.bytes;
  }

  /**
   * Adds one fragment. Returns the completed datagram, undefined while incomplete, or the reason
   * the fragment (and for overlaps its whole datagram) was dropped. `data` and `header` are copied.
   */
  add(
    key: string,
    ipv6: boolean,
    offset: number,
    more: boolean,
    data: Uint8Array,
    header: Uint8Array | undefined,
    now: number,
  ): Reassembled | ReassemblyDrop | undefined {
    if (this.limits.maxDatagrams === 0 || this.limits.maxBytes === 0) return 'frag-disabled';
    if (data.length === 0) return 'frag-empty';
    let d = this.datagrams.get(key);
    if (d === undefined) {
      while (this.datagrams.size >= this.limits.maxDatagrams) this.evictOldest();
      d = {
        ipv6,
        expiresAt: now + (ipv6 ? this.limits.timeoutV6Ms : this.limits.timeoutV4Ms),
        fragments: [],
        header: undefined,
        totalLength: -1,
        received: 0,
      };
      this.datagrams.set(key, d);
    }
    const end = offset + data.length;
    if (!more) {
      if ((d.totalLength !== -1 && d.totalLength !== end) || end < this.highestEnd(d)) {
        this.discard(key, d);
        return 'frag-inconsistent-length';
      }
      d.totalLength = end;
    } else if (d.totalLength !== -1 && end >= d.totalLength) {
      this.discard(key, d);
      return 'frag-inconsistent-length';
    }

    // Insert in offset order; any overlap but an exact duplicate discards the datagram (RFC 5722).
    const frags = d.fragments;
    let i = frags.length;
    while (i > 0 && frags[i - 1]!.offset > offset) i--;
    const prev = frags[i - 1];
    if (prev !== undefined && prev.offset === offset && prev.end === end) return 'frag-duplicate';
    if ((prev !== undefined && prev.end > offset) || (frags[i] !== undefined && frags[i]!.offset < end)) {
      this.discard(key, d);
      return 'frag-overlap';
    }
    if (frags.length >= this.limits.maxFragments) {
      this.discard(key, d);
      return 'frag-too-many';
    }
    const withHeader = offset === 0 && header !== undefined;
    const cost = data.length + (withHeader ? header.length : 0);
    while (this.bytes + cost > this.limits.maxBytes && this.datagrams.size > 1) {
      const oldest = this.datagrams.keys().next().value as string;
      if (oldest === key) break;
      this.evictOldest();
    }
    if (this.bytes + cost > this.limits.maxBytes) {
      this.discard(key, d);
      return 'frag-over-memory';
    }
    frags.splice(i, 0, { offset, end, data: data.slice() });
    if (withHeader) d.header = header.slice();
    d.received += data.length;
    this.bytes += cost;

    if (d.totalLength === -1 || d.received !== d.totalLength || d.header === undefined) return undefined;
    // No overlaps and received == total: the fragments tile [0, total) exactly.
    const payload = new Uint8Array(d.totalLength);
    for (const f of frags) payload.set(f.data, f.offset);
    const done: Reassembled = { header: d.header, payload };
    this.discard(key, d);
    return done;
  }

  /** The earliest time a datagram expires, or undefined when none is pending. */
  nextDeadline(): number | undefined {
    let next: number | undefined;
    for (const d of this.datagrams.values()) if (next === undefined || d.expiresAt < next) next = d.expiresAt;
    return next;
  }

  /** Removes datagrams whose time is up and reports each to `onExpired`. */
  expire(now: number, onExpired: (e: ExpiredDatagram) => void): void {
    for (const [key, d] of this.datagrams) {
      if (d.expiresAt > now) continue;
      const first = d.fragments[0];
      let firstFragment: Uint8Array | undefined;
      if (d.header !== undefined && first !== undefined && first.offset === 0) {
        firstFragment = new Uint8Array(d.header.length + first.data.length);
        firstFragment.set(d.header);
        firstFragment.set(first.data, d.header.length);
      }
      this.discard(key, d);
      onExpired({ firstFragment, ipv6: d.ipv6 });
    }
  }

  private highestEnd(d: Datagram): number {
    const last = d.fragments[d.fragments.length - 1];
    return last === undefined ? 0 : last.end;
  }

  private evictOldest(): void {
    const first = this.datagrams.entries().next();
    if (first.done) return;
    this.discard(first.value[0], first.value[1]);
    this.evicted++;
  }

  private discard(key: string, d: Datagram): void {
    for (const f of d.fragments) this.bytes -= f.data.length;
    if (d.header !== undefined) this.bytes -= d.header.length;
    this.datagrams.delete(key);
  }
}

const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** The key naming one datagram: RFC 791 (src, dst, protocol, id); RFC 8200 §4.5 (src, dst, id). */
export function reassemblyKey(
  version: 4 | 6,
  src: Uint8Array,
  dst: Uint8Array,
  protocol: number,
  identification: number,
): string {
  let key = `${version}/${protocol}/${identification}/`;
  for (let i = 0; i < src.length; i++) key += HEX[src[i]!];
  key += '>';
  for (let i = 0; i < dst.length; i++) key += HEX[dst[i]!];
  return key;
}
