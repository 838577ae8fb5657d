import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryDevice } from '../../../src/tun/memory-device.js';
import { PcapDevice, PcapWriter, pcapFileHeader, writeRecordHeader } from '../../../src/tun/pcap.js';

const dir = mkdtempSync(join(tmpdir(), 't2s-pcap-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const nextPath = (): string => join(dir, `capture-${counter++}.pcap`);

/** A real IPv4/UDP packet: 198.18.0.1:1234 → 198.18.0.2:9, payload "hi". */
const UDP_PACKET = Uint8Array.from(
  Buffer.from('4500001e0000400040110000c6120001c612000204d2000900000000' + '6869', 'hex'),
);

/** Parses a pcap file into its header fields and records. */
function readPcap(bytes: Uint8Array) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const records: { sec: number; usec: number; incl: number; orig: number; data: Uint8Array }[] = [];
  let o = 24;
  while (o < bytes.length) {
    const incl = v.getUint32(o + 8, true);
    records.push({
      sec: v.getUint32(o, true),
      usec: v.getUint32(o + 4, true),
      incl,
      orig: v.getUint32(o + 12, true),
      data: bytes.subarray(o + 16, o + 16 + incl),
    });
    o += 16 + incl;
  }
  expect(o).toBe(bytes.length);
  return { magic: v.getUint32(0, true), network: v.getUint32(20, true), records };
}

describe('pcap format', () => {
  it('writes the classic little-endian file header: magic a1b2c3d4, 2.4, snaplen 65535, LINKTYPE_RAW', () => {
    expect(Buffer.from(pcapFileHeader()).toString('hex')).toBe(
      'd4c3b2a1' + '0200' + '0400' + '00000000' + '00000000' + 'ffff0000' + '65000000',
    );
  });

  it('lays a record header out as ts_sec, ts_usec, incl_len, orig_len', () => {
    const b = new Uint8Array(20).fill(0xa5);
    writeRecordHeader(b, 2, 1_700_000_000_123_456, 60, 1500);
    expect(Buffer.from(b).toString('hex')).toBe(
      'a5a5' + '00f15365' + '40e20100' + '3c000000' + 'dc050000' + 'a5a5',
    );
  });
});

describe('PcapWriter', () => {
  it('records packets with the injected clock and flushes on close', async () => {
    const path = nextPath();
    let t = 1_000_000_000_000_001;
    const w = new PcapWriter(path, { nowUs: () => t++ });
    w.record(UDP_PACKET);
    w.record(UDP_PACKET.subarray(0, 20));
    await w.close();
    const file = readFileSync(path);
    expect(file.subarray(0, 24)).toEqual(Buffer.from(pcapFileHeader()));
    const { records } = readPcap(new Uint8Array(file));
    expect(records.map((r) => [r.sec, r.usec, r.incl, r.orig])).toEqual([
      [1_000_000_000, 1, 30, 30],
      [1_000_000_000, 2, 20, 20],
    ]);
    expect(records[0]!.data).toEqual(UDP_PACKET);
    expect(w.records).toBe(2);
    await w.close(); // idempotent
  });

  it('flushes on its interval without waiting for close', async () => {
    const path = nextPath();
    const w = new PcapWriter(path, { flushIntervalMs: 10 });
    w.record(UDP_PACKET);
    const deadline = Date.now() + 2000;
    while (readFileSync(path).length < 24 + 16 + 30 && Date.now() < deadline)
      await new Promise((r) => setTimeout(r, 10));
    expect(readFileSync(path).length).toBe(24 + 16 + 30);
    await w.close();
  });

  it('stays within two buffers and counts what it drops when the disk lags', async () => {
    const path = nextPath();
    const w = new PcapWriter(path, { bufferBytes: 1, flushIntervalMs: 1000 }); // raised to one max record
    const big = new Uint8Array(60000);
    for (let i = 0; i < 50; i++) w.record(big); // synchronous: the first write is still in flight
    expect(w.records + w.dropped).toBe(50);
    expect(w.dropped).toBeGreaterThan(0);
    await w.close();
    const { records } = readPcap(new Uint8Array(readFileSync(path)));
    expect(records.length).toBe(w.records);
  });

  it('keeps at most 65535 bytes of a packet', async () => {
    const path = nextPath();
    const w = new PcapWriter(path, { nowUs: () => 0 });
    w.record(new Uint8Array(70000));
    await w.close();
    const { records } = readPcap(new Uint8Array(readFileSync(path)));
    expect([records[0]!.incl, records[0]!.orig]).toEqual([65535, 70000]);
  });
});

describe('PcapDevice', () => {
  it('captures both directions of the wrapped device and passes everything through', async () => {
    const path = nextPath();
    const mem = new MemoryDevice({ name: 'cap0', mtu: 1400 });
    const dev = new PcapDevice(mem, path, { nowUs: () => 5 });
    expect([dev.name, dev.mtu]).toEqual(['cap0', 1400]);
    const seen: string[] = [];
    let flushes = 0;
    dev.start({ receive: (p) => seen.push(Buffer.from(p).toString('hex')), flush: () => flushes++ });
    mem.inject(UDP_PACKET);
    const reply = UDP_PACKET.slice();
    reply[19] = 9;
    expect(dev.write(reply)).toBe(true);
    expect(dev.write(new Uint8Array(1500))).toBe(false); // over the MTU: not captured
    await dev.close();
    expect(seen).toEqual([Buffer.from(UDP_PACKET).toString('hex')]);
    expect(flushes).toBe(1);
    expect(mem.take()).toEqual(reply);
    expect(dev.stats.txErrors).toBe(1);
    const { network, records } = readPcap(new Uint8Array(readFileSync(path)));
    expect(network).toBe(101);
    expect(records.map((r) => r.data)).toEqual([UDP_PACKET, reply]);
  });
});
