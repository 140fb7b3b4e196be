import type { OciErrorEntry } from "../oci/index.ts";

export type UpstreamErrorCode =
  /** connect, headers or body-idle timeout */
  | "TIMEOUT"
  /** connection refused/reset, DNS failure, TLS failure */
  | "UNREACHABLE"
  /** the upstream answered with an error status; `status`, `entries`, `challenge` describe it */
  | "STATUS"
  /** the upstream answered something we refuse to serve (bad headers, over the size cap, wrong digest) */
  | "BAD_RESPONSE"
  | "TOO_LARGE"
  | "DIGEST_MISMATCH"
  /** the token service refused or failed */
  | "AUTH_FAILED"
  /** the client went away; nothing to render */
  | "ABORTED";

export class UpstreamError extends Error {
  readonly code: UpstreamErrorCode;
  readonly upstream: string;
  /** For STATUS: the upstream's HTTP status. */
  readonly status: number | undefined;
  /** For STATUS: the upstream's OCI error entries, if its body had any. */
  readonly entries: readonly OciErrorEntry[] | undefined;
  /** For STATUS 401: the upstream's WWW-Authenticate challenge, relayed to a client that authenticates itself. */
  readonly challenge: string | undefined;
  readonly retryAfter: string | undefined;

  constructor(
    code: UpstreamErrorCode,
    upstream: string,
    message: string,
    options: {
      status?: number;
      entries?: readonly OciErrorEntry[];
      challenge?: string;
      retryAfter?: string;
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "UpstreamError";
    this.code = code;
    this.upstream = upstream;
    this.status = options.status;
    this.entries = options.entries;
    this.challenge = options.challenge;
    this.retryAfter = options.retryAfter;
  }
}

const TIMEOUT_CODES = new Set([
  "UND_ERR_CONNECT_TIMEOUT",
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "ETIMEDOUT",
]);
/** Errors after which resending an idempotent request on a fresh connection is safe and may help. */
const RETRYABLE_CODES = new Set(["ECONNRESET", "EPIPE", "UND_ERR_SOCKET", "UND_ERR_CLOSED"]);

export function isRetryableConnectionError(err: unknown): boolean {
  return RETRYABLE_CODES.has(errorCode(err));
}

/** Maps an undici/net error to an UpstreamError, branching on `code`, never on messages. */
export function toUpstreamError(err: unknown, upstream: string, signal?: AbortSignal): UpstreamError {
  if (err instanceof UpstreamError) return err;
  if (
    signal?.aborted ||
    (err as { name?: string })?.name === "AbortError" ||
    errorCode(err) === "UND_ERR_ABORTED"
  ) {
    return new UpstreamError("ABORTED", upstream, "request aborted", { cause: err });
  }
  const code = errorCode(err);
  if (TIMEOUT_CODES.has(code))
    return new UpstreamError("TIMEOUT", upstream, "upstream timed out", { cause: err });
  return new UpstreamError("UNREACHABLE", upstream, "upstream unreachable", { cause: err });
}

function errorCode(err: unknown): string {
  let e: unknown = err;
  for (let depth = 0; depth < 4 && e && typeof e === "object"; depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
    e = (e as { cause?: unknown }).cause;
  }
  return "";
}
