/**
 * Structured log lines. One line per event; callers pass plain fields, never secrets (credentials
 * are Secret objects that serialize as "[redacted]", and tokens never reach a log call).
 *
 * Event names are lower-case words separated by spaces ("tls reload failed"), except the two
 * record streams `access` and `audit`. A warn or error line about a caught error carries its
 * `cause` ({code, message}, see errorCause).
 */
export type LogLevel = "debug" | "info" | "warn" | "error";
export type LogFormat = "json" | "text";

export const LOG_LEVELS: readonly LogLevel[] = ["debug", "info", "warn", "error"];
export const LOG_FORMATS: readonly LogFormat[] = ["json", "text"];

export interface Logger {
  log(level: LogLevel, event: string, fields?: Record<string, unknown>): void;
  /** Writes out anything buffered (before the process exits). */
  flush?(): void;
  /**
   * Writes one record as a JSON line whatever the level and format (the audit stream on stdout:
   * its lines keep their schema when the log is text). Absent on loggers that keep records.
   */
  writeJsonLine?(record: Record<string, unknown>): void;
}

export type LogSink = (line: string) => void;

export interface LoggerOptions {
  /** Lines below this level are dropped. Default info. */
  level?: LogLevel;
  /** json: one JSON object per line; text: `time LEVEL event key=value …`. Default json. */
  format?: LogFormat;
  sink?: LogSink;
  /** Tests: the clock. */
  now?: () => Date;
}

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3 };

/** A `key=value` value: as is when it is one plain token, else JSON-quoted (one line, always). */
function textValue(value: unknown): string {
  let s: string;
  if (typeof value === "string") s = value;
  else {
    // JSON.stringify honours toJSON (Secret renders "[redacted]") and renders objects in one line.
    const json = JSON.stringify(value);
    // A toJSON that gives a string (Secret) is rendered as that string.
    s = json === undefined ? String(value) : json.startsWith('"') ? (JSON.parse(json) as string) : json;
  }
  return needsQuotes(s) ? JSON.stringify(s) : s;
}

function needsQuotes(s: string): boolean {
  if (s === "" || /[\s"=\\]/.test(s)) return true;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** `2026-12-07T06:00:00.000Z INFO event key=value …` (undefined fields are left out, as in JSON). */
export function formatText(
  time: string,
  level: LogLevel,
  event: string,
  fields?: Record<string, unknown>,
): string {
  let line = `${time} ${level.toUpperCase()} ${event.replace(/[\r\n]+/g, " ")}`;
  if (fields) {
    for (const [key, value] of Object.entries(fields)) {
      if (value === undefined) continue;
      line += ` ${key}=${textValue(value)}`;
    }
  }
  return `${line}\n`;
}

/**
 * Lines are buffered within one turn of the event loop and written together: two lines per request
 * (access + audit) would otherwise be two write syscalls each (stdout to a file or pipe is
 * synchronous in Node).
 */
export function createLogger(opts: LoggerOptions | LogSink = {}): Logger {
  const options: LoggerOptions = typeof opts === "function" ? { sink: opts } : opts;
  const sink = options.sink ?? ((line: string) => process.stdout.write(line));
  const minRank = RANK[options.level ?? "info"];
  const text = options.format === "text";
  const now = options.now ?? (() => new Date());
  let buffer: string[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    if (buffer.length === 0) return;
    const out = buffer.join("");
    buffer = [];
    sink(out);
  };
  const push = (line: string) => {
    buffer.push(line);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
  return {
    log(level, event, fields) {
      if (RANK[level] < minRank) return;
      const time = now().toISOString();
      push(
        text
          ? formatText(time, level, event, fields)
          : `${JSON.stringify({ time, level, event, ...fields })}\n`,
      );
    },
    writeJsonLine(record) {
      push(`${JSON.stringify(record)}\n`);
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

/** The longest `cause.message` logged. */
export const MAX_CAUSE_MESSAGE = 200;

/**
 * What a warn or error line says about the error behind it: its code (errno or library code, when
 * it has one) and a bounded, one-line message with any URL credentials (`//user:pass@`) removed.
 */
export function errorCause(err: unknown): { code?: string; message: string } {
  const e = err as { code?: unknown; message?: unknown; name?: unknown } | null | undefined;
  const code = typeof e?.code === "string" || typeof e?.code === "number" ? String(e.code) : undefined;
  let message =
    typeof e?.message === "string"
      ? e.message
      : typeof err === "string"
        ? err
        : typeof e?.name === "string"
          ? e.name
          : "error";
  message = message
    .replace(/\/\/[^/@\s]*@/g, "//[redacted]@")
    .replace(/\s+/g, " ")
    .trim();
  if (message.length > MAX_CAUSE_MESSAGE) message = `${message.slice(0, MAX_CAUSE_MESSAGE - 1)}…`;
  return code === undefined ? { message } : { code, message };
}
