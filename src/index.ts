/**
 * tun2socks as a library: the pure stack, the devices, and the runtime that joins them.
 */

export * from './dns/index.js';
export { LOG_LEVELS, Logger, type LogLevel } from './log.js';
export * from './proxy/index.js';
export {
  SocketOptionError,
  setUpstreamSocketOptions,
  type UpstreamSocketOptions,
} from './proxy/socket-options.js';
export {
  DnsOverTcp,
  DnsOverTcpError,
  type DnsOverTcpOptions,
  frameDnsMessage,
} from './relay/dns-over-tcp.js';
export {
  type ClientRefusal,
  DEFAULT_TCP_HALF_CLOSED_TIMEOUT_MS,
  DEFAULT_TCP_IDLE_TIMEOUT_MS,
  refusalFor,
  type TcpAcceptMode,
  TcpRelay,
  type TcpRelayOptions,
  type TcpRelayStats,
} from './relay/tcp-relay.js';
export {
  DEFAULT_UDP_QUEUE_BYTES,
  DEFAULT_UDP_QUEUE_DATAGRAMS,
  type RelayUdpFlow,
  UdpRelay,
  type UdpRelayOptions,
  type UdpRelayStats,
} from './relay/udp-relay.js';
export { AutoRoute, type AutoRouteOptions } from './route/auto-route.js';
export { DEFAULT_EXCLUDES, planRoutes, type RouteConfig, RouteError, type RoutePlan } from './route/plan.js';
export {
  cryptoRandom,
  type RuntimeOptions,
  StackRuntime,
  TcpRequest,
  type TcpRequestHandler,
  type UdpFlowHandler,
} from './runtime.js';
export {
  DEFAULT_IP_OPTIONS,
  DEFAULT_TCP_CONFIG,
  DEFAULT_UDP_CONFIG,
  type IpOptions,
  StackOptionError,
  type StackOptions,
  type TcpConfig,
  type UdpConfig,
} from './stack/options.js';
export { type RandomSource, seededRandom } from './stack/random.js';
export { Stack, type StackConfig } from './stack/stack.js';
export { StackStats } from './stack/stats.js';
export type { TcpConnection, TcpRejectHow } from './stack/tcp/connection.js';
export { type TcpErrorCode, TcpEvent, type TcpState } from './stack/tcp/state.js';
export { GsoType, IpPacketInfo, RxFlags, type TransportHandler, TxMeta } from './stack/transport.js';
export type { UdpCloseReason, UdpFlowEntry, UdpLayer } from './stack/udp/udp-layer.js';
export { formatAddress, parseAddress } from './stack/wire/address.js';
export { checksum, pseudoHeaderSum } from './stack/wire/checksum.js';
export { Icmpv4Packet, Icmpv4Repr } from './stack/wire/icmpv4.js';
export { Icmpv6Packet, Icmpv6Repr } from './stack/wire/icmpv6.js';
export { IpProtocol } from './stack/wire/ip-protocol.js';
export { Ipv4Packet, Ipv4Repr } from './stack/wire/ipv4.js';
export { Ipv6Packet, Ipv6Repr } from './stack/wire/ipv6.js';
export { TcpFlags, TcpRepr, TcpSegment } from './stack/wire/tcp.js';
export { UdpDatagram, UdpRepr } from './stack/wire/udp.js';
export { TcpSocket } from './tcp-socket.js';
export * from './tun/index.js';
export { Tun2Socks, type Tun2SocksOptions, type Tun2SocksStats } from './tun2socks.js';
export { type UdpEndpoint, UdpFlow, type UdpFlowEvents } from './udp-flow.js';
