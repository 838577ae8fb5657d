/**
 * Option negotiation at handshake time: window scaling, timestamps and SACK each need both sides,
 * and the send MSS follows from the peer's MSS and the options we carry.
 */
import type { TcpConfig } from '../options.js';
import type { TcpOptions } from '../wire/tcp-options.js';
import type { TcpConnection } from './connection.js';

/** Bytes of TCP options we carry on every segment when timestamps are on (NOP NOP TS). */
const TIMESTAMP_OPTION_BYTES = 12;

/** The shift that lets a 16-bit window field express `bytes` (RFC 7323 §2.3, at most 14). */
export function windowScaleFor(bytes: number): number {
  let shift = 0;
  while (shift < 14 && bytes > 0xffff * 2 ** shift) shift++;
  return shift;
}

/**
 * Settles the options of a connection from the peer's SYN (or SYN-ACK): each needs both sides
 * (RFC 7323 §2.2, §3.2; RFC 2018 §2), and the send MSS is the peer's less the options we carry on
 * every segment (RFC 6691); without an MSS option 536 (IPv4) or 1220 (IPv6) (RFC 9293 §3.7.1).
 */
export function negotiate(c: TcpConnection, opts: TcpOptions, cfg: TcpConfig): void {
  c.tsOk = cfg.timestamps && opts.hasTimestamp;
  if (c.tsOk) {
    c.tsRecent = opts.tsVal;
    c.tsRecentAt = c.ctx.now;
  }
  c.sackOk = cfg.sack && opts.sackPermitted;
  c.wsOk = cfg.windowScaling && opts.windowScale !== undefined;
  c.sndWscale = c.wsOk ? opts.windowScale! : 0;
  c.rcvWscale = c.wsOk ? windowScaleFor(cfg.recvBufferMaxBytes) : 0;
  const peerMss = opts.mss ?? (c.localAddress.length === 4 ? 536 : 1220);
  const optionBytes = c.tsOk ? TIMESTAMP_OPTION_BYTES : 0;
  c.sndMss = Math.max(Math.min(peerMss, c.rcvMss) - optionBytes, 64);
  c.cc.setMss(c.sndMss);
}
