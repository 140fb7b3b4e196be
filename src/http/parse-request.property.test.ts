import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isDigest, isValidName, isValidTag, OciError } from "../oci/index.ts";
import { parseRegistryPath, type RegistryPath, splitTarget } from "./parse-request.ts";

const lowerAlnum = fc.constantFrom(..."abz09");
const run = fc.string({ unit: lowerAlnum, minLength: 1, maxLength: 5 });
const component = fc
  .tuple(run, fc.option(fc.tuple(fc.constantFrom(".", "_", "__", "-", "--"), run)))
  .map(([a, rest]) => (rest === null ? a : a + rest[0] + rest[1]));
const validName = fc.array(component, { minLength: 1, maxLength: 4 }).map((p) => p.join("/"));
const validTag = fc
  .tuple(fc.constantFrom(..."aZ9_"), fc.string({ unit: fc.constantFrom(..."aZ9_.-"), maxLength: 20 }))
  .map(([a, b]) => a + b);
const hex = (n: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: n, maxLength: n });
const validDigest = fc.oneof(
  hex(64).map((h) => `sha256:${h}`),
  hex(128).map((h) => `sha512:${h}`),
);

/** Path pieces that try to smuggle something past the grammar. */
const trick = fc.constantFrom(
  "..",
  ".",
  "%2F",
  "%2f",
  "%2e%2e",
  "%2E",
  "%00",
  "%5C",
  "%252F",
  "\\",
  "/",
  "//",
  ";",
  "?",
  "#",
  "A",
  " ",
  "\t",
  "\u0000",
  "\u212a",
  "manifests",
  "blobs",
  "tags",
  "list",
  "referrers",
);
const endpoint = fc.oneof(
  fc.tuple(fc.constant("manifests"), fc.oneof(validTag, validDigest)),
  fc.tuple(fc.constant("blobs"), validDigest),
  fc.tuple(fc.constant("referrers"), validDigest),
  fc.constant(["tags", "list"] as const),
);
const goodPath = fc.tuple(validName, endpoint).map(([n, [k, last]]) => `/v2/${n}/${k}/${last}`);

/** A good path with a trick spliced in at a random character position. */
const splice = fc
  .tuple(goodPath, fc.array(fc.tuple(trick, fc.nat()), { minLength: 1, maxLength: 3 }))
  .map(([p, ins]) => {
    let s = p;
    for (const [piece, at] of ins) {
      const i = at % (s.length + 1);
      s = s.slice(0, i) + piece + s.slice(i);
    }
    return s;
  });

const segmentChar = fc.constantFrom(..."ab0_.-:%2FAsh6@ \\", "\u0000", "é");
const randomPath = fc
  .array(fc.oneof(fc.string({ unit: segmentChar, maxLength: 8 }), trick), { maxLength: 8 })
  .map((segs) => `/v2/${segs.join("/")}`);
const anyTarget = fc.oneof(
  goodPath,
  splice,
  randomPath,
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }),
  fc.tuple(fc.oneof(goodPath, splice), fc.string({ maxLength: 20 })).map(([p, q]) => `${p}?${q}`),
);

function parseOrCode(path: string): RegistryPath | { code: string; status: number } {
  try {
    return parseRegistryPath(path);
  } catch (err) {
    if (!(err instanceof OciError))
      throw new Error(`non-OciError for ${JSON.stringify(path)}: ${String(err)}`);
    return { code: err.code, status: err.status };
  }
}

const RUNS = { numRuns: 2000 };

describe("splitTarget (property)", () => {
  it("never throws and splits at the first '?' without decoding anything", () => {
    fc.assert(
      fc.property(fc.oneof(anyTarget, fc.string({ unit: "binary", maxLength: 80 })), (target) => {
        const { path, query } = splitTarget(target);
        expect(path.includes("?")).toBe(false);
        expect(query.length === 0 ? [path, `${path}?`] : [`${path}?${query}`]).toContain(target);
      }),
      RUNS,
    );
  });
});

describe("parseRegistryPath (property)", () => {
  it("never throws a non-OciError on arbitrary targets; refusals are 400s or the 404 endpoint error", () => {
    fc.assert(
      fc.property(anyTarget, (target) => {
        const r = parseOrCode(splitTarget(target).path);
        if ("code" in r) {
          expect(["NAME_INVALID", "TAG_INVALID", "DIGEST_INVALID", "UNSUPPORTED"]).toContain(r.code);
          expect(r.code === "UNSUPPORTED" ? 404 : 400).toBe(r.status);
        }
      }),
      RUNS,
    );
  });

  it("every accepted path's name, tag and digest pass the oci validators, and no '%' ever reaches a name", () => {
    fc.assert(
      fc.property(anyTarget, (target) => {
        const r = parseOrCode(splitTarget(target).path);
        if ("code" in r || r.kind === "base") return;
        expect(isValidName(r.name)).toBe(true);
        expect(r.name).not.toMatch(/[%\\A-Z]|\.\.|\/\/|^\/|\/$/);
        if (r.kind === "manifest") {
          if (r.reference.kind === "tag") expect(isValidTag(r.reference.tag)).toBe(true);
          else expect(isDigest(r.reference.digest)).toBe(true);
        }
        if (r.kind === "blob" || r.kind === "referrers") expect(isDigest(r.digest)).toBe(true);
      }),
      RUNS,
    );
  });

  it("an accepted path is exactly /v2/<name>/<endpoint>/<last>: nothing the client wrote is dropped or altered", () => {
    fc.assert(
      fc.property(anyTarget, (target) => {
        const { path } = splitTarget(target);
        const r = parseOrCode(path);
        if ("code" in r) return;
        const rebuilt =
          r.kind === "base"
            ? path // "/v2" or "/v2/"
            : r.kind === "manifest"
              ? `/v2/${r.name}/manifests/${r.reference.kind === "tag" ? r.reference.tag : r.reference.digest}`
              : r.kind === "tags"
                ? `/v2/${r.name}/tags/list`
                : `/v2/${r.name}/${r.kind === "blob" ? "blobs" : "referrers"}/${r.digest}`;
        expect(rebuilt).toBe(path);
        if (r.kind === "base") expect(["/v2", "/v2/"]).toContain(path);
      }),
      RUNS,
    );
  });

  it("every generated well-formed path is accepted with the generated parts", () => {
    fc.assert(
      fc.property(validName, endpoint, (name, [kind, last]) => {
        const r = parseRegistryPath(`/v2/${name}/${kind}/${last}`);
        expect(r).toMatchObject({ name });
      }),
      { numRuns: 500 },
    );
  });

  it("a percent-encoded name, a dot segment, an empty segment or a backslash in the name is refused", () => {
    const bad = fc
      .tuple(
        validName,
        fc.constantFrom("%2F", "%2f", "%2e%2e", "..", ".", "", "\\", "%5C", "%41"),
        validName,
        endpoint,
      )
      .map(([a, t, b, [k, last]]) => `/v2/${a}/${t}/${b}/${k}/${last}`);
    fc.assert(
      fc.property(bad, (path) => {
        const r = parseOrCode(path);
        expect(r).toMatchObject({ code: "NAME_INVALID", status: 400 });
      }),
      { numRuns: 500 },
    );
  });
});
