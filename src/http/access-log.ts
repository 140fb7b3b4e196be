import type { HttpBindings } from "@hono/node-server";
import type { MiddlewareHandler } from "hono";
import type { Logger } from "../telemetry/index.ts";
import type { RequestKind } from "./parse-request.ts";

export interface AccessRecord {
  kind?: RequestKind | "other";
  repository?: string;
  upstream?: string;
  digest?: string;
  /** Who the client authenticated as (client authentication on); never a credential. */
  principal?: string;
  /** Body bytes of a buffered response, set by whoever built it (so the log never touches the Response). */
  bytes?: number;
  /** Set when the handler wrote the response itself (node fast path): status and body completion. */
  status?: number;
  streamed?: Promise<{ bytes: number; aborted: boolean }>;
}

export type AccessEnv = { Variables: { access: AccessRecord }; Bindings: Partial<HttpBindings> };
/** The Hono environment of the proxy app: node's bindings and the request's access record. */
export type ProxyEnv = AccessEnv;

/**
 * One JSON line per request: method, kind, repository, upstream, principal, status, bytes, durationMs.
 * Streamed bodies are counted as they are written, and logged when they end or are cancelled.
 * Never logs headers (Authorization) or query strings.
 * `client` is the remote address of the TCP connection (node's socket, through Hono's node bindings); headers
 * such as X-Forwarded-For are never consulted (anyone can send them). Without a socket (app.request()) it is
 * left out.
 */
export function accessLog(logger: Logger): MiddlewareHandler<AccessEnv> {
  return async (c, next) => {
    const start = performance.now();
    // Read now: once a streamed body has ended the socket may be gone (remoteAddress is then undefined).
    const client = clientAddressOf(c.env);
    const record: AccessRecord = {};
    c.set("access", record);
    await next();
    const res = c.res;
    const method = c.req.method;
    const write = (bytes: number, aborted: boolean, status = res.status) => {
      logger.log("info", "access", {
        ...(client !== undefined ? { client } : {}),
        method,
        kind: record.kind ?? "other",
        repository: record.repository,
        upstream: record.upstream,
        digest: record.digest,
        ...(record.principal !== undefined ? { principal: record.principal } : {}),
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

/** The remote address of the request's TCP connection, when there is one. */
function clientAddressOf(env: Partial<HttpBindings> | undefined): string | undefined {
  const address = env?.incoming?.socket?.remoteAddress;
  return typeof address === "string" && address !== "" ? address : undefined;
}
