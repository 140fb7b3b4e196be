import { type FileHandle, open, stat } from "node:fs/promises";
import type { AuditOutput } from "./audit-log.ts";
import { errorCause, type Logger } from "./logger.ts";

export interface AuditFileOptions {
  /** Appended to, one JSON line per record (created 0640 when missing). */
  path: string;
  /** Where write errors and reopens are reported. */
  logger: Logger;
  /** Most bytes waiting to be written; a record beyond that is dropped and counted. Default 16 MiB. */
  maxBufferedBytes?: number;
  /** The path is checked for rotation (a new inode, or removed) at most this often. Default 1 s. */
  checkIntervalMs?: number;
  /** Tests: the clock (ms). */
  now?: () => number;
}

export interface AuditFileStats {
  /** Records written to the file. */
  written: number;
  /** Records lost: a write that failed, or the buffer was full. */
  dropped: number;
  /** Failed opens and writes. */
  errors: number;
  /** Times the file was (re)opened. */
  opens: number;
}

export interface AuditFile extends AuditOutput {
  /** Queues one record (never blocks, never throws on I/O; serializing it may throw). */
  write(record: Record<string, unknown>): void;
  /** Reopens the path before the next write (SIGHUP, after a move-and-create rotation). */
  reopen(): void;
  /** Resolves once what was queued before the call is written (or dropped). */
  flush(): Promise<void>;
  /** Writes what is queued and closes the file; later records are dropped. */
  close(): Promise<void>;
  readonly stats: Readonly<AuditFileStats>;
}

/**
 * The audit stream to a file. Writes never happen on the request path: a record is queued (bounded
 * by bytes) and written by an asynchronous append with whatever else queued meanwhile. The file is
 * opened in append mode, so a copytruncate rotation just continues at the new end; a move-and-create
 * rotation or a removal is noticed by comparing the path's inode with the open file's (at most once
 * per checkIntervalMs, before a write), and SIGHUP reopens unconditionally. An open or write error is
 * logged once per run of errors (with its cause) and counted; the records of a failed write are dropped.
 */
export function createAuditFile(opts: AuditFileOptions): AuditFile {
  const maxBufferedBytes = opts.maxBufferedBytes ?? 16 * 1024 * 1024;
  const checkIntervalMs = opts.checkIntervalMs ?? 1_000;
  const now = opts.now ?? Date.now;
  const stats: AuditFileStats = { written: 0, dropped: 0, errors: 0, opens: 0 };
  let queue: string[] = [];
  let queuedBytes = 0;
  let handle: FileHandle | undefined;
  let identity: { dev: number; ino: number } | undefined;
  let reopenAsked = false;
  let lastCheck = Number.NEGATIVE_INFINITY;
  let draining: Promise<void> | undefined;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let failing = false;
  let dropping = false;
  let scheduled = false;

  const failed = (operation: "open" | "write", err: unknown, lost: number) => {
    stats.errors += 1;
    stats.dropped += lost;
    if (failing) return;
    failing = true;
    opts.logger.log("error", "audit file write failed", {
      path: opts.path,
      operation,
      dropped: lost,
      cause: errorCause(err),
    });
  };

  const closeHandle = async () => {
    const h = handle;
    handle = undefined;
    identity = undefined;
    await h?.close().catch(() => undefined);
  };

  const openFile = async (reason: string) => {
    await closeHandle();
    try {
      const h = await open(opts.path, "a", 0o640);
      const st = await h.stat();
      handle = h;
      identity = { dev: st.dev, ino: st.ino };
      stats.opens += 1;
      lastCheck = now();
      if (stats.opens > 1) opts.logger.log("info", "audit file reopened", { path: opts.path, reason });
    } catch (err) {
      failed("open", err, 0);
    }
  };

  /** Opens, or reopens when asked or when the path no longer names the open file. */
  const ensureOpen = async () => {
    if (reopenAsked || !handle) {
      const reason = handle ? "signal" : stats.opens === 0 ? "start" : "error";
      reopenAsked = false;
      await openFile(reason);
      return;
    }
    if (now() - lastCheck < checkIntervalMs) return;
    lastCheck = now();
    try {
      const st = await stat(opts.path);
      if (identity && st.ino === identity.ino && st.dev === identity.dev) return;
      await openFile("rotated");
    } catch (err) {
      await openFile((err as NodeJS.ErrnoException).code === "ENOENT" ? "removed" : "error");
    }
  };

  const drain = async () => {
    if (reopenAsked && queue.length === 0) await ensureOpen();
    while (queue.length > 0) {
      await ensureOpen();
      if (!handle) {
        // Keep what is queued (bounded) and try again later.
        if (!closed && !retryTimer) {
          retryTimer = setTimeout(() => {
            retryTimer = undefined;
            kick();
          }, checkIntervalMs);
          retryTimer.unref();
        }
        return;
      }
      const lines = queue;
      queue = [];
      queuedBytes = 0;
      dropping = false;
      try {
        await handle.writeFile(lines.join(""));
        stats.written += lines.length;
        failing = false;
      } catch (err) {
        failed("write", err, lines.length);
        // A file that failed a write (EBADF, EIO, ENOSPC…) is reopened before the next one.
        reopenAsked = true;
      }
    }
  };

  const kick = () => {
    if (draining) return;
    draining = drain().finally(() => {
      draining = undefined;
      // Records queued, or a reopen asked, while the last write was finishing.
      if (!closed && ((queue.length > 0 && handle) || reopenAsked)) kick();
    });
  };

  return {
    stats,
    write(record) {
      if (closed) {
        stats.dropped += 1;
        return;
      }
      const line = `${JSON.stringify(record)}\n`;
      const bytes = Buffer.byteLength(line);
      if (queuedBytes + bytes > maxBufferedBytes) {
        stats.dropped += 1;
        if (!dropping) {
          dropping = true;
          opts.logger.log("error", "audit records dropped", { path: opts.path, maxBufferedBytes });
        }
        return;
      }
      queue.push(line);
      queuedBytes += bytes;
      // While the file cannot be opened, the retry timer tries again (once per checkIntervalMs), not every write.
      if (!scheduled && !draining && !retryTimer) {
        // Records of one turn of the event loop go out in one write.
        scheduled = true;
        setImmediate(() => {
          scheduled = false;
          kick();
        });
      }
    },
    reopen() {
      reopenAsked = true;
      // At once, records waiting or not: the rotated file is let go and the new one created now.
      if (!closed) kick();
    },
    async flush() {
      if (queue.length > 0) kick();
      while (draining) await draining;
    },
    async close() {
      closed = true;
      // One drain at a time (through kick): a second would race the first's reopen.
      if (queue.length > 0) kick();
      while (draining) await draining;
      if (retryTimer) clearTimeout(retryTimer);
      retryTimer = undefined;
      stats.dropped += queue.length;
      queue = [];
      queuedBytes = 0;
      await closeHandle();
    },
  };
}
