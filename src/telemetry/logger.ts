/**
 * Structured JSON lines. One line per event; callers pass plain fields, never secrets (credentials
 * are Secret objects that serialize as "[redacted]", and tokens never reach a log call).
 */
export type LogLevel = "debug" | "info" | "warn" | "error";

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
}

export type LogSink = (line: string) => void;

export function createLogger(sink: LogSink = (line) => process.stdout.write(line)): Logger {
  return {
    log(level, event, fields) {
      const record = { time: new Date().toISOString(), level, event, ...fields };
      sink(`${JSON.stringify(record)}\n`);
    },
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
