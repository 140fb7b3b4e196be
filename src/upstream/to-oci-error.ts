import { OciError } from "../oci/index.ts";
import { UpstreamError } from "./errors.ts";

const ERROR_STATUS_CODE: Record<number, OciError["code"]> = {
  401: "UNAUTHORIZED",
  403: "DENIED",
  404: "NAME_UNKNOWN",
  405: "UNSUPPORTED",
  416: "RANGE_INVALID",
  429: "TOOMANYREQUESTS",
};

/**
 * An upstream failure as what the client sees (the one mapping; pull/ applies it before anything
 * leaves it). Other errors are returned unchanged. A 404 becomes `notFoundCode` (MANIFEST_UNKNOWN,
 * BLOB_UNKNOWN or NAME_UNKNOWN, by what was asked).
 */
export function upstreamToOciError(err: unknown, notFoundCode: OciError["code"] = "NAME_UNKNOWN"): unknown {
  if (!(err instanceof UpstreamError)) return err;
  const detail = { upstream: err.upstream };
  const cause = err;
  switch (err.code) {
    case "TIMEOUT":
      return new OciError("UNAVAILABLE", "upstream registry timed out", { status: 504, detail, cause });
    case "UNREACHABLE":
      return new OciError("UNAVAILABLE", "upstream registry unreachable", { status: 502, detail, cause });
    case "ABORTED":
      return new OciError("UNAVAILABLE", "request aborted", { status: 503, detail, cause });
    case "BAD_RESPONSE":
      return new OciError("UNAVAILABLE", `upstream registry sent an invalid response: ${err.message}`, {
        status: 502,
        detail,
        cause,
      });
    case "TOO_LARGE":
      return new OciError("MANIFEST_INVALID", err.message, { status: 502, detail, cause });
    case "DIGEST_MISMATCH":
      return new OciError("DIGEST_INVALID", err.message, { status: 502, detail, cause });
    case "AUTH_FAILED":
      return new OciError("UNAVAILABLE", `upstream authentication failed: ${err.message}`, {
        status: 502,
        detail,
        cause,
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
        cause,
      });
    }
    default: {
      const never: never = err.code;
      return never;
    }
  }
}
