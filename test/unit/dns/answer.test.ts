/**
 * The fake-IP answerer on hand-built DNS messages (RFC 1035 §4.1): A and AAAA answered from the
 * pool (golden bytes), other types forwarded, malformed messages answered FORMERR or dropped,
 * other opcodes NOTIMP, EDNS echoed, and random bytes never throw.
 */
import dnsPacket from 'dns-packet';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { answerLocally, errorHeader, servfail } from '../../../src/dns/answer.js';
import { FakeIpPool } from '../../../src/dns/fake-pool.js';
import { rcodeOf } from './fakes.js';

function hex(s: string): Buffer {
  return Buffer.from(s.replace(/\s+/g, ''), 'hex');
}

/** "name.test" as labels (RFC 1035 §3.1). */
const NAME = '046e616d65 0474657374 00';
/** Header: ID 0x1234, RD, QDCOUNT 1. */
const QUERY_HEADER = '1234 0100 0001 0000 0000 0000';

function message(answer: ReturnType<typeof answerLocally>): Buffer {
  if (answer.kind !== 'answer' && answer.kind !== 'error') throw new Error(`no message: ${answer.kind}`);
  return answer.message;
}

describe('answerLocally', () => {
  it('answers A name.test with the first fake IPv4 address (golden bytes)', () => {
    const pool = new FakeIpPool();
    const query = hex(`${QUERY_HEADER} ${NAME} 0001 0001`);
    const answer = answerLocally(query, pool, 0);
    expect(answer.kind).toBe('answer');
    expect(message(answer).toString('hex')).toBe(
      hex(
        // ID, QR|RD, RA, 1 question, 1 answer
        `1234 8180 0001 0001 0000 0000 ${NAME} 0001 0001` +
          // name.test A IN TTL 60 RDLENGTH 4 198.19.0.1
          `${NAME} 0001 0001 0000003c 0004 c6130001`,
      ).toString('hex'),
    );
  });

  it('answers AAAA with a fake IPv6 address and the configured TTL', () => {
    const pool = new FakeIpPool({ ttlSeconds: 300 });
    const query = hex(`${QUERY_HEADER} ${NAME} 001c 0001`);
    const out = message(answerLocally(query, pool, 0));
    expect(out.subarray(out.length - 26).toString('hex')).toBe(
      hex(`001c 0001 0000012c 0010 fdfedcba98770000 0000000000000001`).toString('hex'),
    );
    expect(pool.nameOf('fdfe:dcba:9877::1', 0)).toBe('name.test');
  });

  it('keeps the question case and echoes EDNS (RFC 6891 §7)', () => {
    const pool = new FakeIpPool();
    const query = dnsPacket.encode({
      type: 'query',
      id: 7,
      flags: dnsPacket.RECURSION_DESIRED,
      questions: [{ type: 'A', name: 'WwW.Test', class: 'IN' }],
      additionals: [
        {
          type: 'OPT',
          name: '.',
          udpPayloadSize: 4096,
          extendedRcode: 0,
          ednsVersion: 0,
          flags: 0,
          flag_do: false,
          options: [],
        },
      ],
    });
    const out = dnsPacket.decode(message(answerLocally(query, pool, 0)));
    expect(out.id).toBe(7);
    expect(out.answers?.[0]).toMatchObject({ name: 'WwW.Test', type: 'A', data: '198.19.0.1' });
    expect(out.additionals?.[0]).toMatchObject({ type: 'OPT', udpPayloadSize: 1232 });
    expect(pool.nameOf('198.19.0.1', 0)).toBe('www.test');
  });

  it('forwards other types and classes', () => {
    const pool = new FakeIpPool();
    for (const qtype of ['000f', '0010', '000c', '0021', '0041']) {
      expect(answerLocally(hex(`${QUERY_HEADER} ${NAME} ${qtype} 0001`), pool, 0).kind).toBe('forward');
    }
    expect(answerLocally(hex(`${QUERY_HEADER} ${NAME} 0001 0003`), pool, 0).kind).toBe('forward');
    expect(pool.stats.live).toBe(0);
  });

  it('answers NODATA when the family has no fake range', () => {
    const pool = new FakeIpPool({ ranges: ['198.19.0.0/16'] });
    const bytes = message(answerLocally(hex(`${QUERY_HEADER} ${NAME} 001c 0001`), pool, 0));
    const out = dnsPacket.decode(bytes);
    expect(rcodeOf(bytes)).toBe('NOERROR');
    expect(out.answers).toEqual([]);
  });

  it('answers SERVFAIL when every mapping is still fresh', () => {
    const pool = new FakeIpPool({ maxNames: 1 });
    pool.addressFor('first.test', 4, 0);
    const answer = answerLocally(hex(`${QUERY_HEADER} ${NAME} 0001 0001`), pool, 0);
    expect(answer).toMatchObject({ kind: 'error', reason: 'dns-exhausted' });
    expect(rcodeOf(message(answer))).toBe('SERVFAIL');
  });

  it('answers FORMERR to a message that does not decode, or with QDCOUNT ≠ 1 (golden header)', () => {
    const pool = new FakeIpPool();
    const truncated = hex(`${QUERY_HEADER} 046e616d`);
    const a = answerLocally(truncated, pool, 0);
    expect(a).toMatchObject({ kind: 'error', reason: 'dns-formerr' });
    expect(message(a).toString('hex')).toBe('123481810000000000000000');
    const two = hex(`1234 0100 0002 0000 0000 0000 ${NAME} 0001 0001 ${NAME} 001c 0001`);
    expect(answerLocally(two, pool, 0)).toMatchObject({ kind: 'error', reason: 'dns-formerr' });
    const none = hex('1234 0100 0000 0000 0000 0000');
    expect(answerLocally(none, pool, 0)).toMatchObject({ kind: 'error', reason: 'dns-formerr' });
  });

  it('answers NOTIMP to other opcodes, keeping the opcode', () => {
    const pool = new FakeIpPool();
    // OPCODE 5 (UPDATE, RFC 2136)
    const a = answerLocally(hex(`1234 2800 0001 0000 0000 0000 ${NAME} 0006 0001`), pool, 0);
    expect(a).toMatchObject({ kind: 'error', reason: 'dns-notimp' });
    expect(message(a).toString('hex')).toBe('1234a8840000000000000000');
  });

  it('drops what is not a query: short messages and responses', () => {
    const pool = new FakeIpPool();
    const query = hex(`${QUERY_HEADER} ${NAME} 0001 0001`);
    for (let n = 0; n < 12; n++) {
      expect(answerLocally(query.subarray(0, n), pool, 0)).toEqual({ kind: 'drop', reason: 'dns-short' });
    }
    for (let n = 12; n < query.length; n++) {
      expect(['error', 'answer']).toContain(answerLocally(query.subarray(0, n), pool, 0).kind);
    }
    const response = Buffer.from(query);
    response[2] = 0x81;
    expect(answerLocally(response, pool, 0)).toEqual({ kind: 'drop', reason: 'dns-not-query' });
  });

  it('builds SERVFAIL and bare error headers', () => {
    const query = hex(`${QUERY_HEADER} ${NAME} 000f 0001`);
    const out = dnsPacket.decode(servfail(query));
    expect(out).toMatchObject({ id: 0x1234, rcode: 'SERVFAIL', type: 'response' });
    expect(out.questions).toEqual([{ name: 'name.test', type: 'MX', class: 'IN' }]);
    expect(servfail(hex('1234 0100 0001')).length).toBe(12);
    expect(errorHeader(hex(`${QUERY_HEADER}`), 2).toString('hex')).toBe('123481820000000000000000');
  });

  it('never throws on random bytes', () => {
    const pool = new FakeIpPool({ maxNames: 4, ttlSeconds: 0 });
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        const a = answerLocally(bytes, pool, 0);
        if (a.kind === 'answer' || a.kind === 'error') expect(a.message.length).toBeGreaterThanOrEqual(12);
      }),
    );
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 12, maxLength: 64 }), (tail) => {
        const q = Buffer.concat([hex(QUERY_HEADER), tail]);
        answerLocally(q, pool, 0);
      }),
    );
  });
});
