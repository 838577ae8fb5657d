/**
 * The stack with no TUN and no root: an in-memory device, one ICMP echo request injected, and the
 * stack's echo reply printed. Run with `node dist/examples/in-memory-ping.js`.
 */
import {
  formatAddress,
  Icmpv4Packet,
  Icmpv4Repr,
  IpProtocol,
  Ipv4Packet,
  Ipv4Repr,
  MemoryDevice,
  parseAddress,
  StackRuntime,
} from '../src/index.js';

const device = new MemoryDevice({ mtu: 1500 });
const runtime = new StackRuntime(device);
device.onTransmit = (packet) => {
  const ip = new Ipv4Packet(packet);
  const icmp = new Icmpv4Packet(ip.payload);
  console.log(
    `reply: ${formatAddress(ip.src)} > ${formatAddress(ip.dst)} type ${icmp.type} id ${icmp.identifier} seq ${icmp.sequence}`,
  );
};
runtime.start();

// Build the ping a client would send to 198.18.5.9: the stack answers for any address.
const echo: Icmpv4Repr = { kind: 'echo-request', identifier: 7, sequence: 1, data: new Uint8Array(56) };
const icmpLength = Icmpv4Repr.length(echo);
const ip: Ipv4Repr = {
  src: parseAddress('198.18.0.1')!,
  dst: parseAddress('198.18.5.9')!,
  protocol: IpProtocol.ICMP,
  payloadLength: icmpLength,
  ttl: 64,
  identification: 1,
  dontFragment: false,
  dscp: 0,
  ecn: 0,
};
const packet = new Uint8Array(Ipv4Repr.length(ip));
Ipv4Repr.emit(ip, packet);
Icmpv4Repr.emit(echo, packet.subarray(20));
device.inject(packet);

console.log(`stats: ${JSON.stringify(runtime.stack.stats.snapshot())}`);
await runtime.close();
