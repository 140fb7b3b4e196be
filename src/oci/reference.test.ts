import { describe, expect, it } from "vitest";
import { computeDigest, digestMatches } from "./digest.ts";
import { OciError } from "./errors.ts";
import {
  digestAlgorithm,
  isDigest,
  isValidName,
  isValidTag,
  parseDigest,
  parseImageReference,
  parseName,
  parseReference,
  parseTag,
  referenceToString,
} from "./reference.ts";

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

describe("reference edges", () => {
  const d256 = `sha256:${"a".repeat(64)}` as const;
  const d512 = `sha512:${"b".repeat(128)}` as const;
  const errorOf = (fn: () => unknown): OciError => {
    try {
      fn();
    } catch (err) {
      if (err instanceof OciError) return err;
    }
    throw new Error("expected an OciError");
  };

  it.each([
    `${d256}x`,
    `x${d256}`,
    `${d256}\n`,
    ` ${d256}`,
    `${d512}0`,
    `0${d512}`,
    `${d256}@${d256}`,
    `sha256:${"a".repeat(128)}`,
    `sha512:${"a".repeat(64)}`,
  ])("a digest with anything around it is not a digest: %j", (value) => {
    expect(isDigest(value)).toBe(false);
    expect(codeOf(() => parseDigest(value))).toBe("DIGEST_INVALID");
  });

  it("accepts exact sha256 and sha512 digests and names their algorithm", () => {
    expect(isDigest(d256)).toBe(true);
    expect(isDigest(d512)).toBe(true);
    expect(digestAlgorithm(d256)).toBe("sha256");
    expect(digestAlgorithm(d512)).toBe("sha512");
  });

  it.each([
    [`md5:${"a".repeat(32)}`, "unsupported digest algorithm"],
    ["sha3.256:abc", "unsupported digest algorithm"],
    ["sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564=", "unsupported digest algorithm"],
    ["sha256:abc", "unsupported digest algorithm"],
    ["a:b", "unsupported digest algorithm"],
    ["SHA256:abc", "invalid digest"],
    ["!md5:abc", "invalid digest"],
    ["md5:abc!", "invalid digest"],
    ["md5:", "invalid digest"],
    [":abc", "invalid digest"],
    ["sha3..256:abc", "invalid digest"],
    ["sha3.:abc", "invalid digest"],
    ["sha256:ab:cd", "invalid digest"],
  ])("tells an unsupported algorithm from an invalid digest: %j", (value, message) => {
    const err = errorOf(() => parseDigest(value));
    expect(err.code).toBe("DIGEST_INVALID");
    expect(err.message).toBe(message);
    expect(err.detail).toEqual({ digest: value });
  });

  it("accepts names up to 255 characters", () => {
    expect(isValidName("a".repeat(255))).toBe(true);
    expect(isValidName(`${"a".repeat(127)}/${"b".repeat(127)}`)).toBe(true);
    expect(isValidName(`${"a".repeat(128)}/${"b".repeat(127)}`)).toBe(false);
  });

  it("echoes the bad input in the error detail, truncated past 300 characters", () => {
    const name = errorOf(() => parseName("Bad"));
    expect(name.message).toBe("invalid repository name");
    expect(name.detail).toEqual({ name: "Bad" });
    const tag = errorOf(() => parseTag("-t"));
    expect(tag.code).toBe("TAG_INVALID");
    expect(tag.message).toBe("invalid tag");
    expect(tag.detail).toEqual({ tag: "-t" });
    expect(errorOf(() => parseName("A".repeat(300))).detail).toEqual({ name: "A".repeat(300) });
    expect(errorOf(() => parseName("A".repeat(301))).detail).toEqual({ name: `${"A".repeat(300)}…` });
    expect(errorOf(() => parseTag("-".repeat(1000))).detail).toEqual({ tag: `${"-".repeat(300)}…` });
    expect(errorOf(() => parseDigest(`x${"a".repeat(400)}`)).detail).toEqual({
      digest: `x${"a".repeat(299)}…`,
    });
  });

  it("parseTag returns a valid tag", () => {
    expect(parseTag("v1.2")).toBe("v1.2");
  });

  it("turns a reference back into its string", () => {
    expect(referenceToString({ kind: "tag", tag: "v1" })).toBe("v1");
    expect(referenceToString({ kind: "digest", digest: d256 })).toBe(d256);
  });

  it("parseImageReference: trims, detects registries, defaults to latest", () => {
    expect(parseImageReference("  proj/app:v1\n")).toEqual({
      registry: undefined,
      name: "proj/app",
      reference: { kind: "tag", tag: "v1" },
    });
    expect(parseImageReference("app.x:v1")).toEqual({
      registry: undefined,
      name: "app.x",
      reference: { kind: "tag", tag: "v1" },
    });
    expect(parseImageReference("localhost/app")).toEqual({
      registry: "localhost",
      name: "app",
      reference: { kind: "tag", tag: "latest" },
    });
    expect(parseImageReference("Registry.Example.COM/app")).toMatchObject({
      registry: "registry.example.com",
      name: "app",
    });
    expect(parseImageReference("proj/app/x")).toMatchObject({ registry: undefined, name: "proj/app/x" });
    expect(parseImageReference("localhostx/app")).toMatchObject({
      registry: undefined,
      name: "localhostx/app",
    });
    expect(parseImageReference(`app@${d256}`)).toEqual({
      registry: undefined,
      name: "app",
      reference: { kind: "digest", digest: d256 },
    });
    expect(codeOf(() => parseImageReference(`app@${d256}x`))).toBe("DIGEST_INVALID");
  });
});
