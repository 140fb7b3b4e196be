import { OciError } from "./errors.ts";

export const API_VERSION_HEADER = { "docker-distribution-api-version": "registry/2.0" } as const;

/**
 * Anything thrown, as what a client may see: an OciError as it is; anything else (a bug) a bare 500
 * with no detail, its message and stack staying in the server log.
 */
export function toOciError(err: unknown): OciError {
  if (err instanceof OciError) return err;
  return new OciError("UNAVAILABLE", "internal error", { status: 500, cause: err });
}

/**
 * The one renderer, for the proxy and the admin API: the OCI envelope
 * `{"errors":[{"code","message","detail"}]}` with the error's status and headers;
 * `access.bytes` gets the body size for the access log.
 */
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
