/**
 * tun2socks as a library: the pure stack, the devices, and the runtime that joins them.
 */
export { LOG_LEVELS, Logger, type LogLevel } from './log.js';
export { cryptoRandom, type RuntimeOptions, StackRuntime } from './runtime.js';
export { DEFAULT_IP_OPTIONS, type IpOptions, StackOptionError, type StackOptions } from './stack/options.js';
export { type RandomSource, seededRandom } from './stack/random.js';
export { Stack, type StackConfig } from './stack/stack.js';
export { StackStats } from './stack/stats.js';
export { IpPacketInfo, RxFlags, type TransportHandler } from './stack/transport.js';
export { formatAddress, parseAddress } from './stack/wire/address.js';
export * from './tun/index.js';
