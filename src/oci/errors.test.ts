import { describe, expect, it } from "vitest";
import { isOciErrorCode, OCI_ERROR_STATUS, OciError } from "./errors.ts";
import { isValidMediaType } from "./media-types.ts";

describe("OCI error codes", () => {
  it("knows exactly the table's codes", () => {
    expect(isOciErrorCode("MANIFEST_UNKNOWN")).toBe(true);
    expect(isOciErrorCode("DENIED")).toBe(true);
    expect(isOciErrorCode("denied")).toBe(false);
    expect(isOciErrorCode("NOPE")).toBe(false);
    expect(isOciErrorCode("toString")).toBe(false);
    expect(isOciErrorCode("__proto__")).toBe(false);
    expect(isOciErrorCode(404)).toBe(false);
    expect(isOciErrorCode(undefined)).toBe(false);
  });

  it("takes its status from the table unless overridden, and defaults its headers", () => {
    const e = new OciError("MANIFEST_UNKNOWN", "no such manifest");
    expect(e).toBeInstanceOf(Error);
    expect(e.name).toBe("OciError");
    expect(e.message).toBe("no such manifest");
    expect(e.status).toBe(OCI_ERROR_STATUS.MANIFEST_UNKNOWN);
    expect(e.status).toBe(404);
    expect(e.headers).toEqual({});
    expect(new OciError("UNAVAILABLE", "x", { status: 504 }).status).toBe(504);
    expect(new OciError("UNAUTHORIZED", "x", { headers: { "www-authenticate": "Bearer" } }).headers).toEqual({
      "www-authenticate": "Bearer",
    });
  });

  it("renders the OCI envelope, with detail only when given", () => {
    expect(new OciError("DENIED", "no").toBody()).toEqual({ errors: [{ code: "DENIED", message: "no" }] });
    expect(Object.keys(new OciError("DENIED", "no").toBody().errors[0] ?? {})).toEqual(["code", "message"]);
    expect(new OciError("DENIED", "no", { detail: { why: 1 } }).toBody()).toEqual({
      errors: [{ code: "DENIED", message: "no", detail: { why: 1 } }],
    });
    expect(new OciError("DENIED", "no", { detail: null }).toBody()).toEqual({
      errors: [{ code: "DENIED", message: "no", detail: null }],
    });
  });

  it("relays upstream entries verbatim when there are any", () => {
    const entries = [
      { code: "SOMETHING_ELSE", message: "upstream said" },
      { code: "DENIED", message: "two" },
    ];
    const body = new OciError("UNAVAILABLE", "mine", { entries }).toBody();
    expect(body).toEqual({ errors: entries });
    expect(body.errors).not.toBe(entries);
    expect(new OciError("UNAVAILABLE", "mine", { entries: [] }).toBody()).toEqual({
      errors: [{ code: "UNAVAILABLE", message: "mine" }],
    });
  });
});

describe("isValidMediaType", () => {
  it.each([
    "application/vnd.oci.image.manifest.v1+json",
    "a/b",
    "ab/cd",
    "text/plain",
    "x-y!#$&^_.+/z0-._",
    `${"a".repeat(127)}/${"b".repeat(127)}`,
  ])("accepts %j", (type) => {
    expect(isValidMediaType(type)).toBe(true);
  });

  it.each([
    "",
    "application",
    "application/",
    "/json",
    "-a/b",
    "a/-b",
    ".a/b",
    "a/.b",
    " a/b",
    "a/b ",
    "a/b\n",
    "application/json; charset=utf-8",
    "a/b/c",
    "a b/c",
    "a/b c",
    "a/b%",
    "a%/b",
    `${"a".repeat(128)}/b`,
    `a/${"b".repeat(128)}`,
  ])("refuses %j", (type) => {
    expect(isValidMediaType(type)).toBe(false);
  });
});
