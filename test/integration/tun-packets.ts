/**
 * Small packet helpers for the TUN integration tests: build an IPv4/UDP datagram, turn an ICMP
 * echo request into its reply, and recognise the datagrams the tests send. Deliberately
 * independent of src/stack, so a device test never depends on the stack being right.
 */
import { checksum, pseudoHeaderSumV4 } from '../../src/stack/wire/checksum.js';

/** Parses dotted IPv4 text into 4 bytes. */
export function ipv4(text: string): Uint8Array {
  return Uint8Array.from(text.split('.').map(Number));
}

/** An IPv4/UDP packet with valid header and UDP checksums (RFC 791, RFC 768). */
export function udp4(
  src: string,
  sport: number,
  dst: string,
  dport: number,
  payload: Uint8Array,
): Uint8Array {
  const p = new Uint8Array(28 + payload.length);
  const total = p.length;
  p.set([0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0]);
  p.set(ipv4(src), 12);
  p.set(ipv4(dst), 16);
  const h = checksum(p.subarray(0, 20));
  p[10] = h >> 8;
  p[11] = h & 0xff;
  const udpLen = 8 + payload.length;
  p.set([sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, udpLen >> 8, udpLen & 0xff, 0, 0], 20);
  p.set(payload, 28);
  const c = checksum(p.subarray(20), pseudoHeaderSumV4(ipv4(src), ipv4(dst), 17, udpLen)) || 0xffff;
  p[26] = c >> 8;
  p[27] = c & 0xff;
  return p;
}

/** The UDP payload of an IPv4 or IPv6 packet to `dport` (no extension headers), or undefined. */
export function udpPayload(p: Uint8Array, dport: number): Uint8Array | undefined {
  const version = p[0]! >> 4;
  let off: number;
  if (version === 4 && p[9] === 17) off = (p[0]! & 0x0f) * 4;
  else if (version === 6 && p[6] === 17) off = 40;
  else return undefined;
  if (p.length < off + 8 || ((p[off + 2]! << 8) | p[off + 3]!) !== dport) return undefined;
  return p.subarray(off + 8);
}

/** The echo reply answering an IPv4 ICMP echo request (RFC 792), or undefined for anything else. */
export function echoReply4(req: Uint8Array): Uint8Array | undefined {
  if (req[0] !== 0x45 || req[9] !== 1 || req[20] !== 8) return undefined;
  const r = req.slice();
  r.set(req.subarray(16, 20), 12);
  r.set(req.subarray(12, 16), 16);
  r[10] = 0;
  r[11] = 0;
  const h = checksum(r.subarray(0, 20));
  r[10] = h >> 8;
  r[11] = h & 0xff;
  r[20] = 0; // echo reply
  r[22] = 0;
  r[23] = 0;
  const c = checksum(r.subarray(20));
  r[22] = c >> 8;
  r[23] = c & 0xff;
  return r;
}

/** A node one-liner (for `node -e`) that sends one UDP datagram `text` to host:port and exits. */
export function sendUdpScript(family: 'udp4' | 'udp6', host: string, port: number, text: string): string {
  return (
    `const s=require('node:dgram').createSocket('${family}');` +
    `s.send(${JSON.stringify(text)},${port},'${host}',(e)=>{if(e){console.error(e.message);process.exit(1)}s.close()})`
  );
}

/** A node one-liner that binds UDP host:port, prints "ready", then prints the first datagram and exits. */
export function receiveUdpScript(host: string, port: number): string {
  return (
    `const s=require('node:dgram').createSocket('udp4');` +
    `s.on('message',(m,r)=>{console.log('got '+m.toString()+' from '+r.address+':'+r.port);s.close()});` +
    `s.bind(${port},'${host}',()=>console.log('ready'));setTimeout(()=>process.exit(3),15000).unref()`
  );
}

/**
 * A node one-liner that binds UDP host:port, prints "ready", collects `count` datagrams (or what
 * came within 10 s), then prints them as one JSON array of strings and exits.
 */
export function receiveManyUdpScript(host: string, port: number, count: number): string {
  return (
    `const s=require('node:dgram').createSocket('udp4');const got=[];` +
    `const done=()=>{console.log(JSON.stringify(got));process.exit(0)};` +
    `s.on('message',(m)=>{got.push(m.toString());if(got.length>=${count})done()});` +
    `s.bind(${port},'${host}',()=>console.log('ready'));setTimeout(done,10000).unref()`
  );
}

/** A node one-liner that sends `count` UDP datagrams "#0".."#N-1" to host:port back to back, then exits. */
export function sendManyUdpScript(host: string, port: number, count: number): string {
  return (
    `const s=require('node:dgram').createSocket('udp4');let i=0;` +
    `const next=()=>{if(i===${count}){s.close();return}s.send('#'+i++,${port},'${host}',next)};next()`
  );
}
