/**
 * A binary min-heap of (deadline, connection): thousands of connections share the runtime's one
 * timer. Entries are never removed in place: a connection whose deadline moved keeps a stale
 * entry, recognised on pop because it no longer matches `scheduledAt` (lazy deletion).
 */

/** Something with a deadline slot, as the heap sees a connection. */
export interface Scheduled {
  scheduledAt: number;
}

/** Min-heap of deadlines with lazy deletion. */
export class TimerHeap<T extends Scheduled> {
  private readonly times: number[] = [];
  private readonly items: T[] = [];

  /** Entries held, stale ones included. */
  get size(): number {
    return this.times.length;
  }

  /** Schedules `item` at `at` if that is earlier than what it has (returns true when pushed). */
  schedule(item: T, at: number): boolean {
    if (!(at < item.scheduledAt)) return false;
    item.scheduledAt = at;
    this.push(at, item);
    return true;
  }

  /** The earliest live deadline, dropping stale entries on the way; undefined when empty. */
  peek(): number | undefined {
    while (this.times.length > 0) {
      const t = this.times[0]!;
      if (this.items[0]!.scheduledAt === t) return t;
      this.pop();
    }
    return undefined;
  }

  /** Removes and returns the earliest live item due at or before `now`, or undefined. */
  popDue(now: number): T | undefined {
    const t = this.peek();
    if (t === undefined || t > now) return undefined;
    const item = this.items[0]!;
    this.pop();
    item.scheduledAt = Number.POSITIVE_INFINITY;
    return item;
  }

  private push(at: number, item: T): void {
    const times = this.times;
    const items = this.items;
    let i = times.length;
    times.push(at);
    items.push(item);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (times[parent]! <= at) break;
      times[i] = times[parent]!;
      items[i] = items[parent]!;
      i = parent;
    }
    times[i] = at;
    items[i] = item;
  }

  private pop(): void {
    const times = this.times;
    const items = this.items;
    const lastTime = times.pop()!;
    const lastItem = items.pop()!;
    const n = times.length;
    if (n === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= n) break;
      const r = l + 1;
      const c = r < n && times[r]! < times[l]! ? r : l;
      if (times[c]! >= lastTime) break;
      times[i] = times[c]!;
      items[i] = items[c]!;
      i = c;
    }
    times[i] = lastTime;
    items[i] = lastItem;
  }
}
