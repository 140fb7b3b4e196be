/**
 * Structured JSON lines. One line per event; callers pass plain fields, never secrets (credentials
 * are Secret objects that serialize as "[redacted]", and tokens never reach a log call).
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
  /** Writes out anything buffered (before the process exits). */
  flush?(): void;
}

export type LogSink = (line: string) => void;

/**
 * Lines are buffered within one turn of the event loop and written together: two lines per request
 * (access + audit) would otherwise be two write syscalls each (stdout to a file or pipe is
 * synchronous in Node).
 */
export function createLogger(sink: LogSink = (line) => process.stdout.write(line)): Logger {
  let buffer: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (buffer.length === 0) return;
    const out = buffer.join("");
    buffer = [];
    sink(out);
  };
  return {
    log(level, event, fields) {
      const record = { time: new Date().toISOString(), level, event, ...fields };
      buffer.push(`${JSON.stringify(record)}\n`);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    flush,
  };
}

/** A logger that keeps records in memory (tests). */
export function createMemoryLogger(): Logger & { records: Array<Record<string, unknown>> } {
  const records: Array<Record<string, unknown>> = [];
  return {
    records,
    log(level, event, fields) {
      records.push({ level, event, ...fields });
    },
  };
}

export const silentLogger: Logger = { log() {} };
