import { describe, expect, it } from "vitest";
import {
  errorTypeName,
  networkErrorCode,
  networkErrorCodeInText,
  raceAbort,
  toAwsKmsError,
  toGcpCredentialsError,
  toGcpKmsError,
  toGcpTokenError,
} from "./kms-error-words.ts";
import { KmsError } from "./types.ts";

const URI = "awskms:///alias/release";
const GURI = "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1";

const named = (name: string, extra: Record<string, unknown> = {}) =>
  Object.assign(new Error("User: arn:aws:iam::111122223333:user/ci is not authorized; RequestId abc"), {
    name,
    ...extra,
  });

describe("toAwsKmsError", () => {
  it.each([
    ["NotFoundException", "NOT_FOUND", "not found (NotFoundException)"],
    ["AccessDeniedException", "PERMISSION_DENIED", "permission denied (AccessDeniedException)"],
    ["UnrecognizedClientException", "UNAUTHENTICATED", "credentials rejected (UnrecognizedClientException)"],
    ["InvalidSignatureException", "UNAUTHENTICATED", "credentials rejected (InvalidSignatureException)"],
    ["ExpiredTokenException", "UNAUTHENTICATED", "credentials expired (ExpiredTokenException)"],
    ["DisabledException", "KEY_STATE", "key disabled (DisabledException)"],
    [
      "KMSInvalidStateException",
      "KEY_STATE",
      "key not usable in its current state (KMSInvalidStateException)",
    ],
    ["UnsupportedOperationException", "WRONG_KEY", "not an asymmetric key (UnsupportedOperationException)"],
    ["InvalidArnException", "NOT_FOUND", "the KMS rejected the key reference (InvalidArnException)"],
    ["ThrottlingException", "UNAVAILABLE", "KMS throttling (ThrottlingException)"],
    ["KMSInternalException", "UNAVAILABLE", "KMS unavailable (KMSInternalException)"],
  ])("%s → %s", (name, code, words) => {
    const err = toAwsKmsError(URI, named(name), 1000);
    expect(err.code).toBe(code);
    expect(err.message).toBe(`${URI}: ${words}`);
    expect(err.uri).toBe(URI);
  });

  it("missing credentials, timeouts, network failures, 5xx and the rest", () => {
    expect(toAwsKmsError(URI, named("CredentialsProviderError"), 1000).code).toBe("NO_CREDENTIALS");
    expect(toAwsKmsError(URI, named("TimeoutError"), 1500).message).toBe(`${URI}: no answer within 1500 ms`);
    expect(toAwsKmsError(URI, named("AbortError"), 1500).code).toBe("TIMEOUT");
    const refused = Object.assign(new Error("connect ECONNREFUSED 10.0.0.1:443"), { code: "ECONNREFUSED" });
    expect(toAwsKmsError(URI, refused, 1000).message).toBe(`${URI}: not reachable (ECONNREFUSED)`);
    const wrapped = new Error("outer", { cause: { code: "SELF_SIGNED_CERT_IN_CHAIN" } });
    expect(toAwsKmsError(URI, wrapped, 1000).message).toBe(
      `${URI}: not reachable (SELF_SIGNED_CERT_IN_CHAIN)`,
    );
    const unavailable = named("SomethingNew", { $metadata: { httpStatusCode: 503 } });
    expect(toAwsKmsError(URI, unavailable, 1000)).toMatchObject({
      code: "UNAVAILABLE",
      message: `${URI}: KMS unavailable (HTTP 503 SomethingNew)`,
    });
    expect(
      toAwsKmsError(URI, named("SomethingNew", { $metadata: { httpStatusCode: 418 } }), 1000).message,
    ).toBe(`${URI}: failed (HTTP 418 SomethingNew)`);
    expect(toAwsKmsError(URI, "a string", 1000).message).toBe(`${URI}: failed (Error)`);
  });

  it("never shows an error's message", () => {
    for (const name of ["AccessDeniedException", "SomethingNew", "Error"]) {
      expect(toAwsKmsError(URI, named(name), 1000).message).not.toMatch(/111122223333|RequestId/);
    }
  });

  it("passes a KmsError through", () => {
    const err = new KmsError("WRONG_KEY", URI, "key usage is ENCRYPT_DECRYPT, not SIGN_VERIFY");
    expect(toAwsKmsError(URI, err, 1000)).toBe(err);
  });
});

const gax = (code: number, message = "projects/p/… details principal://x") =>
  Object.assign(new Error(message), { name: "GoogleError", code });

describe("toGcpKmsError", () => {
  it.each([
    [5, "NOT_FOUND", "not found (NOT_FOUND)"],
    [7, "PERMISSION_DENIED", "permission denied (PERMISSION_DENIED)"],
    [16, "UNAUTHENTICATED", "credentials rejected (UNAUTHENTICATED)"],
    [9, "KEY_STATE", "key version not usable in its current state (FAILED_PRECONDITION)"],
    [3, "NOT_FOUND", "the KMS rejected the key reference (INVALID_ARGUMENT)"],
    [8, "UNAVAILABLE", "KMS quota exhausted (RESOURCE_EXHAUSTED)"],
    [14, "UNAVAILABLE", "KMS unavailable (UNAVAILABLE)"],
    [4, "TIMEOUT", "no answer within 2000 ms (DEADLINE_EXCEEDED)"],
    [1, "TIMEOUT", "no answer within 2000 ms (CANCELLED)"],
    [12, "FAILED", "failed (UNIMPLEMENTED)"],
  ])("gRPC code %i → %s", (code, kmsCode, words) => {
    const err = toGcpKmsError(GURI, gax(code), 2000);
    expect(err.code).toBe(kmsCode);
    expect(err.message).toBe(`${GURI}: ${words}`);
  });

  it("finds a connection failure in google-gax's text, and shows only its code", () => {
    const err = gax(
      14,
      "request to http://10.1.2.3/v1/projects/p failed, reason: connect ECONNREFUSED 10.1.2.3:443",
    );
    expect(toGcpKmsError(GURI, err, 2000).message).toBe(`${GURI}: not reachable (ECONNREFUSED)`);
    const retried = gax(
      4,
      "Total timeout exceeded retrying error … reason: getaddrinfo ENOTFOUND cloudkms.example",
    );
    expect(toGcpKmsError(GURI, retried, 2000).message).toBe(`${GURI}: not reachable (ENOTFOUND)`);
    expect(toGcpKmsError(GURI, gax(7, "mentions ECONNREFUSED"), 2000).code).toBe("PERMISSION_DENIED");
  });

  it("network errors without a gRPC code, the rest", () => {
    expect(toGcpKmsError(GURI, Object.assign(new Error("x"), { code: "ECONNRESET" }), 2000).code).toBe(
      "UNREACHABLE",
    );
    expect(toGcpKmsError(GURI, new TypeError("boom"), 2000).message).toBe(`${GURI}: failed (TypeError)`);
    expect(toGcpKmsError(GURI, gax(99), 2000).code).toBe("FAILED");
  });

  it("token failures: the endpoint's status and OAuth error code, or its network failure", () => {
    const token = Object.assign(new Error("Error code invalid_grant: subject principal://x"), {
      response: { status: 400, data: { error: "invalid_grant", error_description: "principal://x" } },
    });
    expect(toGcpTokenError(GURI, token)).toMatchObject({
      code: "UNAUTHENTICATED",
      message: `${GURI}: could not get an access token (HTTP 400 invalid_grant)`,
    });
    const odd = Object.assign(new Error("x"), { response: { status: 500, data: { error: "Not A Code" } } });
    expect(toGcpTokenError(GURI, odd).message).toBe(`${GURI}: could not get an access token (HTTP 500)`);
    const refused = Object.assign(new Error("x"), { cause: { code: "ECONNREFUSED" } });
    expect(toGcpTokenError(GURI, refused)).toMatchObject({
      code: "UNREACHABLE",
      message: `${GURI}: token endpoint not reachable (ECONNREFUSED)`,
    });
    expect(toGcpTokenError(GURI, new RangeError("x")).message).toBe(
      `${GURI}: could not get an access token (RangeError)`,
    );
  });

  it("credentials: the code when it is one, never the message", () => {
    const enoent = Object.assign(new Error("Unable to read the credential file /secret/path.json"), {
      code: "ENOENT",
    });
    const err = toGcpCredentialsError(GURI, enoent);
    expect(err.code).toBe("NO_CREDENTIALS");
    expect(err.message).toContain("no usable Google credentials (ENOENT)");
    expect(err.message).not.toContain("/secret/path.json");
    expect(
      toGcpCredentialsError(GURI, new Error("Could not load the default credentials")).message,
    ).toContain("no usable Google credentials (GOOGLE_APPLICATION_CREDENTIALS");
  });
});

describe("helpers", () => {
  it("networkErrorCode walks causes and AggregateErrors, boundedly", () => {
    expect(networkErrorCode(new AggregateError([new Error("a"), { code: "EHOSTUNREACH" }]))).toBe(
      "EHOSTUNREACH",
    );
    expect(networkErrorCode({ code: "ENOENT" })).toBeUndefined();
    const loop: { cause?: unknown } = {};
    loop.cause = loop;
    expect(networkErrorCode(loop)).toBeUndefined();
    expect(networkErrorCodeInText("xECONNREFUSEDx")).toBeUndefined();
  });

  it("errorTypeName shows only names that look like type names", () => {
    expect(errorTypeName(named("NotFoundException"))).toBe("NotFoundException");
    expect(errorTypeName(named("Bad name with spaces"))).toBe("Error");
    expect(errorTypeName(null)).toBe("Error");
  });

  it("raceAbort passes results and failures through, and gives way to an abort", async () => {
    const never = new Promise<string>(() => {});
    await expect(
      raceAbort(Promise.resolve("ok"), new AbortController().signal, () => new Error("x")),
    ).resolves.toBe("ok");
    await expect(
      raceAbort(Promise.reject(new Error("no")), new AbortController().signal, () => new Error("x")),
    ).rejects.toThrow("no");
    const controller = new AbortController();
    const raced = raceAbort(never, controller.signal, () => new Error("deadline"));
    controller.abort();
    await expect(raced).rejects.toThrow("deadline");
    await expect(
      raceAbort(Promise.reject(new Error("late")), AbortSignal.abort(), () => new Error("early")),
    ).rejects.toThrow("early");
  });
});
