/**
 * The one table of error codes pullgate answers with (distribution-spec v1.1 "Error Codes", plus
 * distribution's TAG_INVALID and UNAVAILABLE, plus the admin API's POLICY_INVALID). Every error a
 * client or an admin sees is rendered from an OciError by render-error.ts; modules throw their own
 * coded errors and are mapped where they leave their layer (upstream errors by upstream/to-oci-error.ts).
 */
export const OCI_ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 404,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  TAG_INVALID: 400,
  PAGINATION_NUMBER_INVALID: 400,
  RANGE_INVALID: 416,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
  UNAVAILABLE: 503,
  /** Admin API: a policy change that does not validate (the detail lists the problems). */
  POLICY_INVALID: 400,
} as const;

export type OciErrorCode = keyof typeof OCI_ERROR_STATUS;

export function isOciErrorCode(code: unknown): code is OciErrorCode {
  return typeof code === "string" && Object.hasOwn(OCI_ERROR_STATUS, code);
}

export interface OciErrorEntry {
  code: string;
  message: string;
  detail?: unknown;
}

/**
 * An error to be shown to the client as the OCI envelope. `status` defaults to the table's status
 * for the code; a few cases (upstream relays, 502/504 for an unreachable upstream) override it.
 */
export class OciError extends Error {
  readonly code: OciErrorCode;
  readonly status: number;
  readonly detail: unknown;
  /** Extra entries relayed verbatim from an upstream's error body (their codes are kept). */
  readonly entries: readonly OciErrorEntry[] | undefined;
  readonly headers: Readonly<Record<string, string>>;

  constructor(
    code: OciErrorCode,
    message: string,
    options: {
      status?: number;
      detail?: unknown;
      entries?: readonly OciErrorEntry[];
      headers?: Record<string, string>;
      /** What it was mapped from (kept for the server log, never rendered). */
      cause?: unknown;
    } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = "OciError";
    this.code = code;
    this.status = options.status ?? OCI_ERROR_STATUS[code];
    this.detail = options.detail;
    this.entries = options.entries;
    this.headers = options.headers ?? {};
  }

  toBody(): { errors: OciErrorEntry[] } {
    if (this.entries && this.entries.length > 0) return { errors: [...this.entries] };
    const entry: OciErrorEntry = { code: this.code, message: this.message };
    if (this.detail !== undefined) entry.detail = this.detail;
    return { errors: [entry] };
  }
}
