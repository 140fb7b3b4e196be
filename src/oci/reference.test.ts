import { describe, expect, it } from "vitest";
import { computeDigest, digestMatches } from "./digest.ts";
import { OciError } from "./errors.ts";
import { isValidName, isValidTag, parseDigest, parseName, parseReference } from "./reference.ts";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof OciError ? err.code : "not-oci";
  }
  return undefined;
}

describe("repository names", () => {
  it.each(["a", "library/nginx", "proj/app", "a.b_c__d-e--f/g0", "x/y/z/w", "a-b", "a__b"])(
    "accepts %s",
    (name) => {
      expect(isValidName(name)).toBe(true);
    },
  );
  it.each([
    "",
    "A",
    "Proj/app",
    "a/",
    "/a",
    "a//b",
    "..",
    "a/../b",
    "a/./b",
    "a%2Fb",
    "a%2fb",
    "%2e%2e",
    "a\\b",
    "a b",
    "a_",
    "_a",
    "a...b",
    "a___b",
    "a:b",
    "a".repeat(256),
  ])("rejects %j", (name) => {
    expect(isValidName(name)).toBe(false);
    expect(codeOf(() => parseName(name))).toBe("NAME_INVALID");
  });
});

describe("tags and digests", () => {
  it("accepts tags by the spec grammar", () => {
    expect(isValidTag("v1")).toBe(true);
    expect(isValidTag("_x.Y-1")).toBe(true);
    expect(isValidTag("a".repeat(128))).toBe(true);
    expect(isValidTag("a".repeat(129))).toBe(false);
    expect(isValidTag("-a")).toBe(false);
    expect(isValidTag(".a")).toBe(false);
    expect(isValidTag("a/b")).toBe(false);
    expect(isValidTag("a%20")).toBe(false);
  });
  it("parses a reference as a digest when it has a colon", () => {
    const d = `sha256:${"a".repeat(64)}`;
    expect(parseReference(d)).toEqual({ kind: "digest", digest: d });
    expect(parseReference("v1")).toEqual({ kind: "tag", tag: "v1" });
  });
  it.each([
    ["sha256:abc", "DIGEST_INVALID"],
    [`sha256:${"A".repeat(64)}`, "DIGEST_INVALID"],
    [`sha256:${"a".repeat(63)}`, "DIGEST_INVALID"],
    [`md5:${"a".repeat(32)}`, "DIGEST_INVALID"],
    [`sha512:${"a".repeat(64)}`, "DIGEST_INVALID"],
    ["-bad-", "TAG_INVALID"],
    ["", "TAG_INVALID"],
  ])("rejects reference %j with %s", (ref, code) => {
    expect(codeOf(() => parseReference(ref))).toBe(code);
  });
  it("accepts sha512 digests", () => {
    const d = `sha512:${"0".repeat(128)}`;
    expect(parseDigest(d)).toBe(d);
  });
});

describe("digests of bytes", () => {
  it("computes sha256 and sha512 and checks a match under the expected algorithm", () => {
    const bytes = Buffer.from("hello");
    const s256 = computeDigest(bytes);
    expect(s256).toBe("sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824");
    const s512 = computeDigest(bytes, "sha512");
    expect(s512.startsWith("sha512:")).toBe(true);
    expect(digestMatches(bytes, s256)).toBe(true);
    expect(digestMatches(bytes, s512)).toBe(true);
    expect(digestMatches(Buffer.from("hellO"), s256)).toBe(false);
  });
});

describe("image references", () => {
  it("parses registry, name, tag and digest like docker pull", async () => {
    const { parseImageReference } = await import("./reference.ts");
    const d = `sha256:${"a".repeat(64)}`;
    expect(parseImageReference("proj/app:v1")).toEqual({
      registry: undefined,
      name: "proj/app",
      reference: { kind: "tag", tag: "v1" },
    });
    expect(parseImageReference("proj/app")).toMatchObject({ reference: { kind: "tag", tag: "latest" } });
    expect(parseImageReference(`docker.io/library/nginx:1@${d}`)).toEqual({
      registry: "docker.io",
      name: "library/nginx",
      reference: { kind: "digest", digest: d },
    });
    expect(parseImageReference("127.0.0.1:5000/proj/app:v2")).toMatchObject({
      registry: "127.0.0.1:5000",
      name: "proj/app",
    });
    expect(codeOf(() => parseImageReference("Proj/App:v1"))).toBe("NAME_INVALID");
    expect(codeOf(() => parseImageReference("proj/app:-x"))).toBe("TAG_INVALID");
  });
});
