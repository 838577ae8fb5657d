/**
 * The benchmark's table: one row per metric with the three paths side by side, the ratios of the
 * tun2socks figure to each baseline, and the issue's target when the row has one. Printed as
 * text and kept as JSON. Figures are reported, never asserted.
 */

/** A target from the issue: a ratio to a baseline, an addition over SOCKS-only, or a ceiling. */
export type Target =
  | { kind: 'vs-socks'; min: number }
  | { kind: 'vs-direct'; min: number }
  | { kind: 'added-over-socks'; max: number }
  | { kind: 'at-most'; max: number };

/** One metric on every path it was measured on (undefined: not measured on that path). */
export interface Row {
  metric: string;
  unit: string;
  direct?: number;
  socks?: number;
  tun?: number;
  target?: Target;
}

/** A row with its ratios and verdict, as written to JSON. */
export interface RowResult extends Row {
  ratioVsSocks?: number;
  ratioVsDirect?: number;
  targetText?: string;
  /** Whether the target is met; undefined without a target or without the figures it needs. */
  met?: boolean;
}

const finite = (x: number | undefined): x is number => x !== undefined && Number.isFinite(x);

function ratio(a: number | undefined, b: number | undefined): number | undefined {
  return finite(a) && finite(b) && b !== 0 ? a / b : undefined;
}

function targetText(t: Target, unit: string): string {
  switch (t.kind) {
    case 'vs-socks':
      return `>= ${t.min} x socks`;
    case 'vs-direct':
      return `>= ${t.min} x direct`;
    case 'added-over-socks':
      return `< socks + ${t.max} ${unit}`;
    case 'at-most':
      return `< ${t.max} ${unit}`;
  }
}

function verdict(r: Row): boolean | undefined {
  const t = r.target;
  if (t === undefined || !finite(r.tun)) return undefined;
  switch (t.kind) {
    case 'vs-socks':
      return finite(r.socks) ? r.tun >= t.min * r.socks : undefined;
    case 'vs-direct':
      return finite(r.direct) ? r.tun >= t.min * r.direct : undefined;
    case 'added-over-socks':
      return finite(r.socks) ? r.tun - r.socks < t.max : undefined;
    case 'at-most':
      return r.tun < t.max;
  }
}

/** Adds ratios, target text and verdict to each row. */
export function evaluate(rows: readonly Row[]): RowResult[] {
  return rows.map((r) => {
    const out: RowResult = { ...r };
    const vsSocks = ratio(r.tun, r.socks);
    const vsDirect = ratio(r.tun, r.direct);
    if (vsSocks !== undefined) out.ratioVsSocks = vsSocks;
    if (vsDirect !== undefined) out.ratioVsDirect = vsDirect;
    if (r.target !== undefined) out.targetText = targetText(r.target, r.unit);
    const met = verdict(r);
    if (met !== undefined) out.met = met;
    return out;
  });
}

/** A figure in 3 significant digits (thousands without a fraction); `-` when absent. */
export function fmt(x: number | undefined): string {
  if (x === undefined) return '-';
  if (!Number.isFinite(x)) return 'failed';
  if (Math.abs(x) >= 1000) return Math.round(x).toString();
  return x.toPrecision(3);
}

/** The table as Markdown (it reads as text too, and pastes into the README). */
export function renderTable(rows: readonly RowResult[]): string {
  const head = ['metric', 'direct', 'socks-only', 'tun2socks', 'vs socks', 'vs direct', 'target', 'met?'];
  const body = rows.map((r) => [
    `${r.metric} (${r.unit})`,
    fmt(r.direct),
    fmt(r.socks),
    fmt(r.tun),
    r.ratioVsSocks === undefined ? '-' : r.ratioVsSocks.toFixed(2),
    r.ratioVsDirect === undefined ? '-' : r.ratioVsDirect.toFixed(2),
    r.targetText ?? '',
    r.met === undefined ? (r.target === undefined ? '' : '?') : r.met ? 'yes' : 'NO',
  ]);
  const widths = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i]!.length)));
  const line = (cells: readonly string[]) =>
    `| ${cells.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join(' | ')} |`;
  const rule = `|${widths.map((w, i) => (i === 0 ? `${'-'.repeat(w + 1)}-` : `${'-'.repeat(w + 1)}:`)).join('|')}|`;
  return [line(head), rule, ...body.map(line)].join('\n');
}

/** The median of the finite values (NaN when none). */
export function median(xs: readonly number[]): number {
  const v = xs.filter(Number.isFinite).sort((a, b) => a - b);
  if (v.length === 0) return Number.NaN;
  const mid = v.length >> 1;
  return v.length % 2 === 1 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
}
