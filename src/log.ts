/**
 * A minimal leveled logger: one line per event on stderr, `time level message key=value…`.
 */

/** Log levels from most to least verbose. */
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error', 'silent'] as const;
/** One of LOG_LEVELS. */
export type LogLevel = (typeof LOG_LEVELS)[number];

/** Writes log lines at or above a level. */
export class Logger {
  private readonly threshold: number;

  constructor(
    level: LogLevel = 'info',
    private readonly write: (line: string) => void = (line) => process.stderr.write(line),
  ) {
    this.threshold = LOG_LEVELS.indexOf(level);
  }

  /** True when lines of `level` are written (skip building costly messages otherwise). */
  enabled(level: LogLevel): boolean {
    return LOG_LEVELS.indexOf(level) >= this.threshold && level !== 'silent';
  }

  /** Debug detail: per-connection events. */
  debug(message: string, fields?: Record<string, unknown>): void {
    this.log('debug', message, fields);
  }

  /** Normal operation. */
  info(message: string, fields?: Record<string, unknown>): void {
    this.log('info', message, fields);
  }

  /** Something went wrong for one connection or packet; the process carries on. */
  warn(message: string, fields?: Record<string, unknown>): void {
    this.log('warn', message, fields);
  }

  /** Something went wrong for the whole process. */
  error(message: string, fields?: Record<string, unknown>): void {
    this.log('error', message, fields);
  }

  private log(level: LogLevel, message: string, fields?: Record<string, unknown>): void {
    if (!this.enabled(level)) return;
    let line = `${new Date().toISOString()} ${level.toUpperCase().padEnd(5)} ${message}`;
    if (fields !== undefined) {
      for (const [k, v] of Object.entries(fields))
        line += ` ${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`;
    }
    this.write(`${line}\n`);
  }
}
