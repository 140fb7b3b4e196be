import { OciError } from "../oci/index.ts";
import { UpstreamError } from "../upstream/index.ts";

const ERROR_STATUS_CODE: Record<number, OciError["code"]> = {
  401: "UNAUTHORIZED",
  403: "DENIED",
  404: "NAME_UNKNOWN",
  405: "UNSUPPORTED",
  416: "RANGE_INVALID",
  429: "TOOMANYREQUESTS",
};

/**
 * The one mapping from module errors to what a client sees. Unknown errors become a bare 500 with
 * no detail: their message and stack stay in the server log.
 */
export function toOciError(err: unknown, notFoundCode: OciError["code"] = "NAME_UNKNOWN"): OciError {
  if (err instanceof OciError) return err;
  if (err instanceof UpstreamError) {
    const detail = { upstream: err.upstream };
    switch (err.code) {
      case "TIMEOUT":
        return new OciError("UNAVAILABLE", "upstream registry timed out", { status: 504, detail });
      case "UNREACHABLE":
        return new OciError("UNAVAILABLE", "upstream registry unreachable", { status: 502, detail });
      case "ABORTED":
        return new OciError("UNAVAILABLE", "request aborted", { status: 503, detail });
      case "BAD_RESPONSE":
        return new OciError("UNAVAILABLE", `upstream registry sent an invalid response: ${err.message}`, {
          status: 502,
          detail,
        });
      case "TOO_LARGE":
        return new OciError("MANIFEST_INVALID", err.message, { status: 502, detail });
      case "DIGEST_MISMATCH":
        return new OciError("DIGEST_INVALID", err.message, { status: 502, detail });
      case "AUTH_FAILED":
        return new OciError("UNAVAILABLE", `upstream authentication failed: ${err.message}`, {
          status: 502,
          detail,
        });
      case "STATUS": {
        const status = err.status ?? 502;
        const code = status === 404 ? notFoundCode : (ERROR_STATUS_CODE[status] ?? "UNAVAILABLE");
        const headers: Record<string, string> = {};
        if (err.challenge) headers["www-authenticate"] = err.challenge;
        if (err.retryAfter) headers["retry-after"] = err.retryAfter;
        return new OciError(code, `upstream registry answered ${status}`, {
          status,
          ...(err.entries ? { entries: err.entries } : {}),
          headers,
        });
      }
      default: {
        const never: never = err.code;
        return never;
      }
    }
  }
  return new OciError("UNAVAILABLE", "internal error", { status: 500 });
}

export const API_VERSION_HEADER = { "docker-distribution-api-version": "registry/2.0" } as const;

/** The OCI envelope as a response; `access.bytes` gets the body size for the access log. */
export function renderError(err: OciError, access?: { bytes?: number }): Response {
  const body = Buffer.from(JSON.stringify(err.toBody()));
  if (access) access.bytes = body.length;
  return new Response(new Uint8Array(body), {
    status: err.status,
    headers: {
      ...API_VERSION_HEADER,
      ...err.headers,
      "content-type": "application/json; charset=utf-8",
      "content-length": String(body.length),
    },
  });
}
