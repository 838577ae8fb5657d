/**
 * The whole relay with no TUN and no root: a Tun2Socks engine on one end of an in-memory device
 * pair, with a custom Dialer (every destination is served by a local server) and a custom
 * UdpDialer (an in-process echo). On the other end, a second stack plays the client machine: it
 * opens a TCP connection to 198.18.5.9:80 and sends a UDP datagram to 198.18.5.9:7.
 * Run with `node dist/examples/in-memory-relay.js`.
 */
import { EventEmitter } from 'node:events';
import * as net from 'node:net';
import {
  type Dialer,
  IpProtocol,
  Ipv4Repr,
  memoryPair,
  parseAddress,
  pseudoHeaderSum,
  StackRuntime,
  Tun2Socks,
  type UdpAssociation,
  type UdpDialer,
  UdpRepr,
} from '../src/index.js';

// A local "internet": one TCP server that greets whoever connects.
const server = net.createServer((s) => {
  s.once('data', (request) => s.end(`hello, you asked for ${request.toString().trim()}\n`));
});
await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
const serverPort = (server.address() as net.AddressInfo).port;

// A custom dialer: every destination is answered by the local server (a real one would pick a
// proxy per destination, or connect through a VPN, ...).
const dialer: Dialer = {
  name: 'loopback',
  dial: (dst) =>
    new Promise((resolve, reject) => {
      console.log(`dial ${dst.host}:${dst.port}`);
      const s = net.connect(serverPort, '127.0.0.1', () => resolve(s.setNoDelay(true)));
      s.once('error', reject);
    }),
};

// A custom UDP dialer: an association that echoes every datagram back from its destination.
const udpDialer: UdpDialer = {
  name: 'echo',
  associate: async () => {
    const association = new EventEmitter() as UdpAssociation;
    association.send = (payload, to) => {
      setImmediate(() =>
        association.emit('message', Buffer.from(payload), { address: to.host, port: to.port }),
      );
    };
    association.close = () => association.emit('close');
    return association;
  },
};

const [machine, engineSide] = memoryPair();
const engine = new Tun2Socks({ device: engineSide, dialer, udpDialer });
await engine.start();

// The client machine: our own stack again, opening connections like any host would.
const client = new StackRuntime(machine);
client.start();

// TCP: a connection to 198.18.5.9:80, relayed through the custom dialer.
const socket = client.connect({ address: '198.18.0.1', port: 40000 }, { address: '198.18.5.9', port: 80 });
socket.write('/index.html\n');
let answer = '';
socket.on('data', (chunk: Buffer) => {
  answer += chunk.toString();
});
await new Promise((resolve) => socket.on('end', resolve));
console.log(`tcp answer: ${answer.trim()}`);
socket.end();

// UDP: one datagram from 198.18.0.1:5000 to 198.18.5.9:7, written as an IP packet on the wire.
const src = parseAddress('198.18.0.1')!;
const dst = parseAddress('198.18.5.9')!;
const data = new TextEncoder().encode('ping over udp');
const udp = new Uint8Array(UdpRepr.length({ srcPort: 5000, dstPort: 7, payloadLength: data.length }));
udp.set(data, 8);
UdpRepr.emit(
  { srcPort: 5000, dstPort: 7, payloadLength: data.length },
  udp,
  pseudoHeaderSum(src, dst, IpProtocol.UDP, udp.length),
);
const ipRepr: Ipv4Repr = {
  src,
  dst,
  protocol: IpProtocol.UDP,
  payloadLength: udp.length,
  ttl: 64,
  identification: 1,
  dontFragment: false,
  dscp: 0,
  ecn: 0,
};
const packet = new Uint8Array(Ipv4Repr.length(ipRepr));
Ipv4Repr.emit(ipRepr, packet);
packet.set(udp, 20);
// The answer reaches the client machine's own stack, which sees it as a datagram from 198.18.5.9:7.
const reply = new Promise<string>((resolve) => {
  client.onUdpFlow((flow) => {
    flow.on('datagram', (payload, to) => {
      resolve(`${payload.toString()} (from ${flow.clientAddress}:${flow.clientPort} to port ${to.port})`);
    });
  });
});
machine.write(packet);
console.log(`udp answer: ${await reply}`);

console.log(`stats: ${JSON.stringify({ tcp: engine.stats().tcp, udp: engine.stats().udp })}`);
await engine.close();
await client.close();
server.close();
