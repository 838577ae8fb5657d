/**
 * tun2socks on a real TUN with a custom dialer: connections to one subnet go through a SOCKS5
 * proxy, everything else is refused, and each decision is printed. UDP goes through the same
 * proxy (UDP ASSOCIATE). Needs root (or CAP_NET_ADMIN):
 *
 *   sudo node dist/examples/split-proxy.js tun7 socks5://127.0.0.1:1080 198.18.0.0/15
 *   sudo ip addr add 198.19.255.1/32 dev tun7 && sudo ip link set tun7 up
 *   sudo ip route add 198.18.0.0/15 dev tun7      # only the test range, never a default route
 */
import {
  createDialer,
  createRejectDialer,
  createUdpDialer,
  type Dialer,
  Logger,
  openTun,
  parseProxyUrl,
  Tun2Socks,
} from '../src/index.js';

const [name = 'tun7', proxyUrl = 'socks5://127.0.0.1:1080', cidr = '198.18.0.0/15'] = process.argv.slice(2);
const [base = '', bits = '32'] = cidr.split('/');
const prefix = Number(bits);

/** The IPv4 address as a 32-bit number, or undefined for anything else (names, IPv6). */
function ipv4(host: string): number | undefined {
  const parts = host.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
}
const network = ipv4(base);
if (network === undefined || !(prefix >= 0 && prefix <= 32)) throw new Error(`not an IPv4 CIDR: ${cidr}`);
const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
const inside = (host: string): boolean => {
  const a = ipv4(host);
  return a !== undefined && (a & mask) >>> 0 === (network & mask) >>> 0;
};

const proxy = parseProxyUrl(proxyUrl);
const viaProxy = createDialer(proxy);
const refuse = createRejectDialer();
const dialer: Dialer = {
  name: 'split',
  dial: (dst, opts) => {
    const chosen = inside(dst.host) ? viaProxy : refuse;
    console.log(`${dst.host}:${dst.port} -> ${chosen.name}`);
    return chosen.dial(dst, opts);
  },
};

const engine = new Tun2Socks({
  device: openTun({ name }),
  proxy,
  dialer,
  udpDialer: createUdpDialer(proxy) ?? null,
  log: new Logger('info'),
});
await engine.start();
console.log(`relaying ${cidr} on ${name} through ${engine.upstream}; Ctrl-C to stop`);
const stop = () => {
  void engine.close().then(() => {
    console.log(JSON.stringify(engine.stats().tcp));
    process.exit(0);
  });
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
