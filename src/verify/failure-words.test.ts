import { describe, expect, it } from "vitest";
import { certificateFailure, codeOf, keyFailure, messageOf } from "./failure-words.ts";

// The words of a deny's detail, for every @sigstore/verify code pullgate names.

describe("keyFailure", () => {
  it.each([
    [
      "TIMESTAMP_ERROR",
      true,
      "no transparency-log entry, and the key requires one (transparencyLog: required; set optional for signatures made without Rekor)",
    ],
    ["TIMESTAMP_ERROR", false, "a timestamp does not verify (m)"],
    ["SIGNATURE_ERROR", true, "the signature does not verify with this key"],
    ["PUBLIC_KEY_ERROR", false, "the signature does not verify with this key"],
    [
      "TLOG_INCLUSION_PROMISE_ERROR",
      true,
      "the log entry's signed promise (SET) does not verify with any log of the trusted root (m)",
    ],
    ["TLOG_INCLUSION_PROOF_ERROR", true, "the log entry does not verify against the trusted root (m)"],
    ["TLOG_ERROR", true, "the log entry does not verify against the trusted root (m)"],
    ["TLOG_MISSING_INCLUSION_ERROR", true, "the log entry does not verify against the trusted root (m)"],
    ["TLOG_BODY_ERROR", true, "the log entry is for another signature or payload (m)"],
    ["CERTIFICATE_ERROR", true, "m"],
    [undefined, true, "m"],
  ])("%s (required %s): %s", (code, required, words) => {
    expect(keyFailure(code, "m", required)).toBe(words);
  });
});

describe("certificateFailure", () => {
  it.each([
    [
      "CERTIFICATE_ERROR",
      "the certificate does not chain to the root's Fulcio CAs, or was not valid at the logged time (m)",
    ],
    ["TIMESTAMP_ERROR", "no verified log entry or timestamp (m)"],
    ["SIGNATURE_ERROR", "the signature does not verify"],
    ["PUBLIC_KEY_ERROR", "m"],
    ["TLOG_BODY_ERROR", "the log entry is for another signature or payload (m)"],
    ["TLOG_ERROR", "the log entry does not verify against the trusted root (m)"],
    ["SOMETHING_NEW", "m"],
  ])("%s: %s", (code, words) => {
    expect(certificateFailure(code, "m")).toBe(words);
  });
});

describe("codeOf and messageOf", () => {
  it("reads a string code only", () => {
    expect(codeOf(Object.assign(new Error("x"), { code: "TLOG_ERROR" }))).toBe("TLOG_ERROR");
    expect(codeOf(Object.assign(new Error("x"), { code: 7 }))).toBeUndefined();
    expect(codeOf(undefined)).toBeUndefined();
    expect(codeOf(null)).toBeUndefined();
  });

  it("keeps a message up to the limit and cuts a longer one with an ellipsis", () => {
    expect(messageOf(new Error("a".repeat(160)))).toBe("a".repeat(160));
    expect(messageOf(new Error("a".repeat(161)))).toBe(`${"a".repeat(160)}…`);
    expect(messageOf("plain", 3)).toBe("pla…");
    expect(messageOf(42)).toBe("42");
  });
});
