import { Agent, type Dispatcher, request } from "undici";
import { parseRetryAfter } from "./backoff.ts";
import type { AttemptResult } from "./types.ts";

/** Sends one message: a POST of a JSON body. Resolves with the outcome; never rejects. */
export type WebhookPost = (req: {
  url: string;
  headers: Readonly<Record<string, string>>;
  body: string;
  timeoutMs: number;
  signal?: AbortSignal | undefined;
}) => Promise<AttemptResult>;

export interface WebhookTransport {
  post: WebhookPost;
  close(): Promise<void>;
}

/** The receiver's answer body is read (so the connection can be reused) up to this, then dropped. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Webhook requests on their own undici pool (never the upstreams'): no redirects followed (a 3xx is a
 * refusal), each attempt bounded by `timeoutMs`. Errors are reported by code only: undici's messages
 * may quote the URL, which can carry a secret.
 */
export function createWebhookTransport(opts: { dispatcher?: Dispatcher } = {}): WebhookTransport {
  const agent = opts.dispatcher ?? new Agent({ connections: 4, keepAliveTimeout: 10_000 });
  return {
    async post({ url, headers, body, timeoutMs, signal }) {
      const timeout = AbortSignal.timeout(timeoutMs);
      try {
        const res = await request(url, {
          method: "POST",
          dispatcher: agent,
          headers: {
            ...headers,
            "content-type": "application/json; charset=utf-8",
            "user-agent": "pullgate-alerts",
          },
          body,
          signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
          headersTimeout: timeoutMs,
          bodyTimeout: timeoutMs,
        });
        const status = res.statusCode;
        const retryAfter = res.headers["retry-after"];
        await res.body.dump({ limit: MAX_ANSWER_BYTES }).catch(() => {});
        if (status >= 200 && status < 300) return { ok: true, status };
        const retryable = status >= 500 || status === 429 || status === 408;
        const retryAfterMs = parseRetryAfter(
          Array.isArray(retryAfter) ? retryAfter[0] : retryAfter,
          Date.now(),
        );
        return { ok: false, retryable, status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) };
      } catch (err) {
        return { ok: false, retryable: true, error: errorCode(err, timeout) };
      }
    },
    async close() {
      if (!opts.dispatcher) await agent.close();
    },
  };
}

/** A code for a failed request (ECONNREFUSED, UND_ERR_HEADERS_TIMEOUT, timeout, …), never its message. */
function errorCode(err: unknown, timeout: AbortSignal): string {
  if (timeout.aborted) return "timeout";
  const e = err as { code?: unknown; name?: unknown; cause?: { code?: unknown } };
  for (const c of [e.code, e.cause?.code]) if (typeof c === "string" && /^[A-Z0-9_]{1,64}$/.test(c)) return c;
  return typeof e.name === "string" && /^[A-Za-z]{1,64}$/.test(e.name) ? e.name : "error";
}
