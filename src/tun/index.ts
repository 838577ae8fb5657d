/** The device edge: Linux TUN (koffi), in-memory and fault-injecting devices, pcap capture. */
export type { Device, DeviceOffload, DeviceStats, PacketSink } from './device.js';
export { NO_OFFLOAD, newDeviceStats } from './device.js';
export { TunError, type TunErrorCode } from './errors.js';
export {
  type FaultCounters,
  type FaultDecision,
  FaultDevice,
  type FaultOptions,
  FaultPlan,
  type FaultSpec,
  mulberry32,
} from './fault-device.js';
export { DEFAULT_BATCH, openTun, type ReadMode, TunDevice, type TunOptions } from './linux-tun.js';
export { MemoryDevice, type MemoryDeviceOptions, memoryPair } from './memory-device.js';
export { PcapDevice, PcapWriter, type PcapWriterOptions } from './pcap.js';
export { type DeviceSpec, parseDeviceSpec } from './spec.js';
export { type OffloadMode, openTunFd, type TunFdOptions } from './tun-open.js';
export {
  VIRTIO_NET_HDR_LENGTH,
  VirtioNetHdr,
  VirtioNetHdrRepr,
  type VnetDrop,
  VnetFlags,
  VnetGso,
} from './vnet.js';
