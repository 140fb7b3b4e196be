import { KmsError, type KmsErrorCode } from "./types.ts";

/**
 * SDK failures → KmsError, in short words an operator can act on. Only error codes and type names are
 * shown, never an error's message: AWS and Google put principals, account ids, request ids and
 * resource paths there. Branches on codes and type names, with one exception: google-gax keeps the
 * system error of a failed connection (ECONNREFUSED…) only in its message text, so that text is
 * searched for the whitelisted codes below (and only the code is shown).
 */

const NETWORK_CODES = [
  "ECONNREFUSED",
  "ECONNRESET",
  "ECONNABORTED",
  "ENOTFOUND",
  "EAI_AGAIN",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ETIMEDOUT",
  "EPIPE",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "EPROTO",
] as const;
const NETWORK_CODE_SET: ReadonlySet<string> = new Set(NETWORK_CODES);
const NETWORK_CODE_IN_TEXT = new RegExp(`\\b(${NETWORK_CODES.join("|")})\\b`);

/** The first whitelisted system error code on `err` or its causes (bounded walk). */
export function networkErrorCode(err: unknown, depth = 0): string | undefined {
  if (depth > 5 || typeof err !== "object" || err === null) return undefined;
  const code = (err as { code?: unknown }).code;
  if (typeof code === "string" && NETWORK_CODE_SET.has(code)) return code;
  const nested = [
    (err as { cause?: unknown }).cause,
    ...((err as { errors?: unknown[] }).errors ?? []).slice(0, 4),
  ];
  for (const inner of nested) {
    const found = networkErrorCode(inner, depth + 1);
    if (found !== undefined) return found;
  }
  return undefined;
}

/** A whitelisted system error code mentioned in `text` (for google-gax, which keeps it only there). */
export function networkErrorCodeInText(text: string): string | undefined {
  return NETWORK_CODE_IN_TEXT.exec(text)?.[1];
}

/** An error's type name when it looks like one (`NotFoundException`), else "Error". */
export function errorTypeName(err: unknown): string {
  const name = typeof err === "object" && err !== null ? (err as { name?: unknown }).name : undefined;
  return typeof name === "string" && /^[A-Za-z][A-Za-z0-9_.]{0,63}$/.test(name) ? name : "Error";
}

const AWS_CODES: Readonly<Record<string, [KmsErrorCode, string]>> = {
  NotFoundException: ["NOT_FOUND", "not found"],
  AccessDeniedException: ["PERMISSION_DENIED", "permission denied"],
  UnrecognizedClientException: ["UNAUTHENTICATED", "credentials rejected"],
  InvalidSignatureException: ["UNAUTHENTICATED", "credentials rejected"],
  IncompleteSignatureException: ["UNAUTHENTICATED", "credentials rejected"],
  InvalidClientTokenId: ["UNAUTHENTICATED", "credentials rejected"],
  ExpiredTokenException: ["UNAUTHENTICATED", "credentials expired"],
  MissingAuthenticationTokenException: ["UNAUTHENTICATED", "credentials rejected"],
  DisabledException: ["KEY_STATE", "key disabled"],
  KMSInvalidStateException: ["KEY_STATE", "key not usable in its current state"],
  KeyUnavailableException: ["KEY_STATE", "key unavailable"],
  UnsupportedOperationException: ["WRONG_KEY", "not an asymmetric key"],
  InvalidKeyUsageException: ["WRONG_KEY", "not a signing key"],
  InvalidArnException: ["NOT_FOUND", "the KMS rejected the key reference"],
  ValidationException: ["NOT_FOUND", "the KMS rejected the key reference"],
  KMSInternalException: ["UNAVAILABLE", "KMS unavailable"],
  DependencyTimeoutException: ["UNAVAILABLE", "KMS unavailable"],
  ThrottlingException: ["UNAVAILABLE", "KMS throttling"],
  LimitExceededException: ["UNAVAILABLE", "KMS throttling"],
  ServiceUnavailableException: ["UNAVAILABLE", "KMS unavailable"],
};

/** An @aws-sdk/client-kms failure → KmsError. */
export function toAwsKmsError(uri: string, err: unknown, timeoutMs: number): KmsError {
  if (err instanceof KmsError) return err;
  const name = errorTypeName(err);
  if (name === "CredentialsProviderError") {
    return new KmsError(
      "NO_CREDENTIALS",
      uri,
      "no AWS credentials found (environment, shared config/credentials files, web identity, container or instance metadata)",
    );
  }
  const known = AWS_CODES[name];
  if (known !== undefined) return new KmsError(known[0], uri, `${known[1]} (${name})`);
  if (name === "TimeoutError" || name === "AbortError") {
    return new KmsError("TIMEOUT", uri, `no answer within ${timeoutMs} ms`);
  }
  const network = networkErrorCode(err);
  if (network !== undefined) return new KmsError("UNREACHABLE", uri, `not reachable (${network})`);
  const status = (err as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
  if (typeof status === "number" && status >= 500) {
    return new KmsError("UNAVAILABLE", uri, `KMS unavailable (HTTP ${status} ${name})`);
  }
  return new KmsError(
    "FAILED",
    uri,
    `failed (${typeof status === "number" ? `HTTP ${status} ` : ""}${name})`,
  );
}

/** gRPC status codes by number (google-gax errors carry the number). */
const GRPC_STATUS = [
  "OK",
  "CANCELLED",
  "UNKNOWN",
  "INVALID_ARGUMENT",
  "DEADLINE_EXCEEDED",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "PERMISSION_DENIED",
  "RESOURCE_EXHAUSTED",
  "FAILED_PRECONDITION",
  "ABORTED",
  "OUT_OF_RANGE",
  "UNIMPLEMENTED",
  "INTERNAL",
  "UNAVAILABLE",
  "DATA_LOSS",
  "UNAUTHENTICATED",
] as const;

const GCP_CODES: Readonly<Record<string, [KmsErrorCode, string]>> = {
  NOT_FOUND: ["NOT_FOUND", "not found"],
  PERMISSION_DENIED: ["PERMISSION_DENIED", "permission denied"],
  UNAUTHENTICATED: ["UNAUTHENTICATED", "credentials rejected"],
  FAILED_PRECONDITION: ["KEY_STATE", "key version not usable in its current state"],
  INVALID_ARGUMENT: ["NOT_FOUND", "the KMS rejected the key reference"],
  RESOURCE_EXHAUSTED: ["UNAVAILABLE", "KMS quota exhausted"],
  INTERNAL: ["UNAVAILABLE", "KMS unavailable"],
  UNAVAILABLE: ["UNAVAILABLE", "KMS unavailable"],
  UNKNOWN: ["UNAVAILABLE", "KMS unavailable"],
};

/** A @google-cloud/kms (google-gax) call failure → KmsError. */
export function toGcpKmsError(uri: string, err: unknown, timeoutMs: number): KmsError {
  if (err instanceof KmsError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : "";
  if (typeof code === "number" && Number.isInteger(code) && code > 0 && code < GRPC_STATUS.length) {
    const status = GRPC_STATUS[code] as string;
    const network =
      status === "UNAVAILABLE" || status === "DEADLINE_EXCEEDED"
        ? networkErrorCodeInText(message)
        : undefined;
    if (network !== undefined) return new KmsError("UNREACHABLE", uri, `not reachable (${network})`);
    if (status === "DEADLINE_EXCEEDED" || status === "CANCELLED") {
      return new KmsError("TIMEOUT", uri, `no answer within ${timeoutMs} ms (${status})`);
    }
    const known = GCP_CODES[status];
    if (known !== undefined) return new KmsError(known[0], uri, `${known[1]} (${status})`);
    return new KmsError("FAILED", uri, `failed (${status})`);
  }
  const network = networkErrorCode(err) ?? networkErrorCodeInText(message);
  if (network !== undefined) return new KmsError("UNREACHABLE", uri, `not reachable (${network})`);
  return new KmsError("FAILED", uri, `failed (${errorTypeName(err)})`);
}

/**
 * A failure to get an access token (token endpoint, STS exchange, metadata server) → KmsError: the
 * endpoint's HTTP status and OAuth error code (`invalid_grant`…) when it answered.
 */
export function toGcpTokenError(uri: string, err: unknown): KmsError {
  if (err instanceof KmsError) return err;
  const network = networkErrorCode(err);
  if (network !== undefined)
    return new KmsError("UNREACHABLE", uri, `token endpoint not reachable (${network})`);
  const response = (err as { response?: { status?: unknown; data?: unknown } } | null)?.response;
  if (typeof response?.status === "number") {
    const oauth = (response.data as { error?: unknown } | null | undefined)?.error;
    const detail = typeof oauth === "string" && /^[a-z_]{1,40}$/.test(oauth) ? ` ${oauth}` : "";
    return new KmsError(
      "UNAUTHENTICATED",
      uri,
      `could not get an access token (HTTP ${response.status}${detail})`,
    );
  }
  return new KmsError("UNAUTHENTICATED", uri, `could not get an access token (${errorTypeName(err)})`);
}

/** A failure to build Google credentials (google-auth-library's application default chain) → KmsError. */
export function toGcpCredentialsError(uri: string, err: unknown): KmsError {
  if (err instanceof KmsError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  const detail = typeof code === "string" && /^[A-Z][A-Z0-9_]{1,40}$/.test(code) ? ` (${code})` : "";
  return new KmsError(
    "NO_CREDENTIALS",
    uri,
    `no usable Google credentials${detail} (GOOGLE_APPLICATION_CREDENTIALS, gcloud application-default credentials, or the metadata server)`,
  );
}

/**
 * `work`, unless `signal` aborts first: then `onAbort()`'s error. `work` keeps running (its own SDK
 * timeout ends it); its late failure is swallowed.
 */
export function raceAbort<T>(work: Promise<T>, signal: AbortSignal, onAbort: () => Error): Promise<T> {
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(onAbort());
  }
  return new Promise<T>((resolve, reject) => {
    const abort = () => {
      work.catch(() => {});
      reject(onAbort());
    };
    signal.addEventListener("abort", abort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener("abort", abort);
        resolve(value);
      },
      (err: unknown) => {
        signal.removeEventListener("abort", abort);
        reject(err);
      },
    );
  });
}
