import type { MiddlewareHandler } from "hono";
import type { Logger } from "../telemetry/index.ts";
import type { RequestKind } from "./parse-request.ts";

export interface AccessRecord {
  kind?: RequestKind | "other";
  repository?: string;
  upstream?: string;
  digest?: string;
  /** Body bytes of a buffered response, set by whoever built it (so the log never touches the Response). */
  bytes?: number;
  /** Set when the handler wrote the response itself (node fast path): status and body completion. */
  status?: number;
  streamed?: Promise<{ bytes: number; aborted: boolean }>;
}

export type AccessEnv = { Variables: { access: AccessRecord } };

/**
 * One JSON line per request: method, kind, repository, upstream, status, bytes, durationMs.
 * Streamed bodies are counted as they are written, and logged when they end or are cancelled.
 * Never logs headers (Authorization) or query strings.
 */
export function accessLog(logger: Logger): MiddlewareHandler<AccessEnv> {
  return async (c, next) => {
    const start = performance.now();
    const record: AccessRecord = {};
    c.set("access", record);
    await next();
    const res = c.res;
    const method = c.req.method;
    const write = (bytes: number, aborted: boolean, status = res.status) => {
      logger.log("info", "access", {
        method,
        kind: record.kind ?? "other",
        repository: record.repository,
        upstream: record.upstream,
        digest: record.digest,
        status,
        bytes,
        durationMs: Math.round((performance.now() - start) * 100) / 100,
        ...(aborted ? { aborted: true } : {}),
      });
    };
    if (record.streamed) {
      const status = record.status ?? res.status;
      record.streamed.then(({ bytes, aborted }) => write(bytes, aborted, status));
      return;
    }
    // Reading res.body or res.headers would turn node-server's light Response into a real one (a
    // stream and a Headers object per request): sizes come from the record instead.
    if (method === "HEAD") {
      write(0, false);
      return;
    }
    if (record.bytes !== undefined) {
      write(record.bytes, false);
      return;
    }
    const body = res.body;
    if (body === null) {
      write(0, false);
      return;
    }
    let bytes = 0;
    let finished = false;
    const finish = (aborted: boolean) => {
      if (finished) return;
      finished = true;
      write(bytes, aborted);
    };
    const reader = body.getReader();
    const counted = new ReadableStream<Uint8Array>(
      {
        async pull(controller) {
          try {
            const { done, value } = await reader.read();
            if (done) {
              controller.close();
              finish(false);
            } else {
              bytes += value.byteLength;
              controller.enqueue(value);
            }
          } catch (err) {
            controller.error(err);
            finish(true);
          }
        },
        cancel(reason) {
          finish(true);
          return reader.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
    c.res = new Response(counted, res);
  };
}
