/**
 * The fake-IP answerer: decides, for one DNS message sent to the stack, whether the stack answers
 * it itself (A/AAAA of class IN with an address from the fake pool; malformed queries with
 * FORMERR; other opcodes with NOTIMP), forwards it (every other question), or drops it (not a
 * query at all). The wire format is dns-packet's; the header is read by hand first so that
 * whatever dns-packet cannot decode still gets a FORMERR with the right ID (RFC 1035 §4.1.1).
 */
import dnsPacket from 'dns-packet';
import type { FakeIpPool } from './fake-pool.js';

/** A DNS header is 12 bytes (RFC 1035 §4.1.1). */
export const DNS_HEADER_BYTES = 12;
/** The UDP payload size we advertise in an EDNS OPT record (RFC 6891 §6.2.5; DNS flag day 2020). */
export const EDNS_UDP_PAYLOAD = 1232;

/** RCODE values (RFC 1035 §4.1.1). */
export const Rcode = { NOERROR: 0, FORMERR: 1, SERVFAIL: 2, NOTIMP: 4 } as const;

/** Why a message gets no answer at all: shorter than a header, or a response (QR set). */
export type DnsDropReason = 'dns-short' | 'dns-not-query';

/** Why the stack answered with an error RCODE (counted per reason). */
export type DnsErrorReason = 'dns-formerr' | 'dns-notimp' | 'dns-exhausted';

/** What to do with one message. */
export type LocalAnswer =
  | { readonly kind: 'answer'; readonly message: Buffer }
  | { readonly kind: 'error'; readonly message: Buffer; readonly reason: DnsErrorReason }
  | { readonly kind: 'forward' }
  | { readonly kind: 'drop'; readonly reason: DnsDropReason };

/**
 * A bare response header echoing the query's ID, OPCODE and RD (RFC 1035 §4.1.1) with `rcode`,
 * RA set and no sections: for FORMERR/NOTIMP/SERVFAIL when the question cannot be echoed.
 */
export function errorHeader(query: Uint8Array, rcode: number): Buffer {
  const b = Buffer.alloc(DNS_HEADER_BYTES);
  b[0] = query[0]!;
  b[1] = query[1]!;
  // QR=1, OPCODE and RD copied; RA=1 (recursion is offered, through the proxy).
  b[2] = 0x80 | (query[2]! & 0x79);
  b[3] = 0x80 | (rcode & 0x0f);
  return b;
}

/** A SERVFAIL for `query` (a forward failed), echoing its question when it decodes. */
export function servfail(query: Uint8Array): Buffer {
  const decoded = decode(query);
  return decoded === undefined
    ? errorHeader(query, Rcode.SERVFAIL)
    : respond(query, decoded, Rcode.SERVFAIL, []);
}

/** dns-packet's decode, undefined where it throws (it does on malformed input). */
function decode(message: Uint8Array): dnsPacket.DecodedPacket | undefined {
  try {
    return dnsPacket.decode(Buffer.from(message.buffer, message.byteOffset, message.byteLength));
  } catch {
    return undefined;
  }
}

/** Encodes a response to `query` (decoded) with `rcode` and `answers`, echoing its question and EDNS. */
function respond(
  query: Uint8Array,
  decoded: dnsPacket.DecodedPacket,
  rcode: number,
  answers: dnsPacket.Answer[],
): Buffer {
  const opcodeBits = (query[2]! >> 3) & 0x0f;
  const rd = decoded.flag_rd ? dnsPacket.RECURSION_DESIRED : 0;
  const cd = decoded.flag_cd ? dnsPacket.CHECKING_DISABLED : 0;
  // RFC 6891 §7: a responder that understands EDNS answers an OPT query with an OPT record.
  const edns = (decoded.additionals ?? []).some((a) => a.type === 'OPT');
  return dnsPacket.encode({
    type: 'response',
    id: decoded.id ?? 0,
    flags: (opcodeBits << 11) | rd | cd | dnsPacket.RECURSION_AVAILABLE | (rcode & 0x0f),
    questions: decoded.questions ?? [],
    answers,
    additionals: edns ? [ednsOpt()] : [],
  });
}

/** Our OPT pseudo-record: version 0, no options, DO clear (we sign nothing). */
function ednsOpt(): dnsPacket.OptAnswer {
  return {
    type: 'OPT',
    name: '.',
    udpPayloadSize: EDNS_UDP_PAYLOAD,
    extendedRcode: 0,
    ednsVersion: 0,
    flags: 0,
    flag_do: false,
    options: [],
  };
}

/**
 * Decides about one DNS message sent to the stack's DNS address (fake-IP mode). `nowMs` is the
 * pool's clock. Never throws on message bytes.
 */
export function answerLocally(query: Uint8Array, pool: FakeIpPool, nowMs: number): LocalAnswer {
  if (query.length < DNS_HEADER_BYTES) return { kind: 'drop', reason: 'dns-short' };
  // RFC 1035 §4.1.1: QR=1 is a response; answering it could loop two resolvers forever.
  if ((query[2]! & 0x80) !== 0) return { kind: 'drop', reason: 'dns-not-query' };
  const opcode = (query[2]! >> 3) & 0x0f;
  const decoded = decode(query);
  if (decoded === undefined) {
    return { kind: 'error', message: errorHeader(query, Rcode.FORMERR), reason: 'dns-formerr' };
  }
  // Only standard queries (OPCODE 0) are answered; IQUERY, STATUS, NOTIFY, UPDATE are not ours.
  if (opcode !== 0) {
    return { kind: 'error', message: errorHeader(query, Rcode.NOTIMP), reason: 'dns-notimp' };
  }
  const questions = decoded.questions ?? [];
  // RFC 9619: a query carries exactly one question; anything else is a format error.
  const question = questions[0];
  if (questions.length !== 1 || question === undefined) {
    return { kind: 'error', message: errorHeader(query, Rcode.FORMERR), reason: 'dns-formerr' };
  }
  const cls = question.class ?? 'IN';
  if (cls !== 'IN' || (question.type !== 'A' && question.type !== 'AAAA')) return { kind: 'forward' };
  const family = question.type === 'A' ? 4 : 6;
  if (!pool.hasFamily(family)) {
    // No fake range of this family: NOERROR with no answer (NODATA, RFC 2308 §2.2), so the
    // client uses the other family instead of leaking a real lookup.
    return { kind: 'answer', message: respond(query, decoded, Rcode.NOERROR, []) };
  }
  const address = pool.addressFor(question.name, family, nowMs);
  if (address === undefined) {
    return { kind: 'error', message: respond(query, decoded, Rcode.SERVFAIL, []), reason: 'dns-exhausted' };
  }
  const answer: dnsPacket.Answer = {
    type: question.type,
    class: 'IN',
    name: question.name,
    ttl: pool.ttlSeconds,
    data: address,
  };
  return { kind: 'answer', message: respond(query, decoded, Rcode.NOERROR, [answer]) };
}
