/**
 * Names of test-bed objects. Every name carries the creating process's pid and a per-process
 * counter, so names never collide between test beds of one process or between processes running
 * at once, and a namespace left by a killed run can be told from a live one by its pid.
 */
import { IFNAME_MAX_BYTES } from './guard.js';

/** Prefix of every namespace the test bed creates: `t2s-<pid>-<counter>-…`. */
export const NETNS_PREFIX = 't2s-';

/** Digits of the base-36 pid in an interface name: 36^5 exceeds Linux's largest pid_max, 2^22. */
const IFNAME_PID_DIGITS = 5;

/** Longest tag or label kept in a namespace name. */
const NETNS_PART_MAX = 24;

let counter = 0;

/** The next value of the process-wide counter that makes names unique within a process. */
export function nextCounter(): number {
  return counter++;
}

/** Lower-cases `text` and keeps only `[a-z0-9-]` (other characters become `-`), at most `max` long. */
function sanitize(text: string, max: number): string {
  const s = text
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .slice(0, max);
  return s === '' ? 'x' : s;
}

/** A namespace name `t2s-<pid>-<counter>-<parts…>`, the pid and counter first so a sweep can parse them. */
export function netnsName(pid: number, n: number, ...parts: string[]): string {
  return [`${NETNS_PREFIX}${pid}`, String(n), ...parts.map((p) => sanitize(p, NETNS_PART_MAX))].join('-');
}

/** The pid in a test-bed namespace name, or undefined when `name` is not one (`t2s-<pid>-<counter>…`). */
export function netnsPid(name: string): number | undefined {
  const m = /^t2s-([1-9]\d{0,9})-\d+(?:-|$)/.exec(name);
  return m === null ? undefined : Number(m[1]);
}

/**
 * An interface name `t<pid><counter>-<label>` of at most 15 bytes: the pid in 5 fixed base-36
 * digits, then the counter in base 36 ended by `-`, so (pid, counter) reads back unambiguously and
 * the name is unique whatever the label; the label (only `[a-z0-9]`) fills what room is left.
 */
export function ifnameFor(pid: number, n: number, label: string): string {
  const head = `t${pid.toString(36).padStart(IFNAME_PID_DIGITS, '0')}${n.toString(36)}-`;
  if (head.length > IFNAME_MAX_BYTES) throw new Error(`testbed: interface counter ${n} exhausted`);
  return (
    head +
    label
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, IFNAME_MAX_BYTES - head.length)
  );
}

/** The (pid, counter) an `ifnameFor` name was made from, or undefined for other names. */
export function ifnameOwner(name: string): { pid: number; n: number } | undefined {
  const m = /^t([0-9a-z]{5})([0-9a-z]+)-[0-9a-z]*$/.exec(name);
  if (m === null) return undefined;
  return { pid: Number.parseInt(m[1]!, 36), n: Number.parseInt(m[2]!, 36) };
}
