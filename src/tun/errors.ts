/**
 * Errors from opening and running a TUN device. Each message is one actionable line, meant to be
 * printed as is by the CLI (`err.message`, no stack trace); `code` is stable for programs.
 */

/** Why a TUN operation failed. */
export type TunErrorCode =
  /** /dev/net/tun is missing: the tun module is not loaded. */
  | 'TUN_UNAVAILABLE'
  /** Not root and no CAP_NET_ADMIN. */
  | 'TUN_PERMISSION'
  /** Another process holds the (single-queue) device, or its flags differ. */
  | 'TUN_BUSY'
  /** The interface name is empty, longer than 15 bytes, or has characters Linux rejects. */
  | 'TUN_BAD_NAME'
  /** The name or fd belongs to something that is not a TUN device. */
  | 'TUN_NOT_TUN'
  /** The fd given is not open. */
  | 'TUN_BAD_FD'
  /** The network namespace path is missing or cannot be entered. */
  | 'TUN_NETNS'
  /** The MTU could not be read or set. */
  | 'TUN_MTU'
  /** The device uses a feature this build does not handle (e.g. a virtio-net header). */
  | 'TUN_UNSUPPORTED'
  /** A device spec string (`tun0`, `tun://tun0`, `fd://3`) is malformed. */
  | 'TUN_SPEC'
  /** Reading stopped on an unrecoverable error (e.g. the interface was deleted). */
  | 'TUN_READ'
  /** Any other failed system call. */
  | 'TUN_SYSCALL';

/** An error opening or running a TUN device: one clear line, a stable `code`, and the errno name when a syscall failed. */
export class TunError extends Error {
  /** The stable error code. */
  readonly code: TunErrorCode;
  /** The errno name of the failed system call (`EBUSY`), if any. */
  readonly errno: string | undefined;

  /** Makes an error with a one-line message. */
  constructor(code: TunErrorCode, message: string, errno?: string) {
    super(message);
    this.name = 'TunError';
    this.code = code;
    this.errno = errno;
  }
}
