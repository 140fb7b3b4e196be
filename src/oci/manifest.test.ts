import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { goFoldAscii, readManifest } from "./manifest.ts";
import { MediaType } from "./media-types.ts";
import { parseStrictJson } from "./strict-json.ts";

const OCI = MediaType.ociManifest;
const INDEX = MediaType.ociIndex;
const D = `sha256:${"a".repeat(64)}`;
const layer = `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"${D}","size":1}`;
const read = (text: string, type: string | undefined = OCI) => readManifest(Buffer.from(text), type);
const problemOf = (text: string, type?: string) => {
  const r = read(text, type);
  return r.ok ? undefined : r.problem;
};

describe("parseStrictJson: inputs JSON.parse and Go read differently are refused", () => {
  it.each([
    ['{"a":1,"a":2}', /duplicate key/],
    ['{"a":"\\ud800"}', /lone surrogate/],
    ['{"a":"\\udc00x"}', /lone surrogate/],
    ['{"a":1} x', /unexpected text/],
    ["\ufeff{}", /byte-order mark/],
    ['{"a":01}', /unexpected|expected/],
    ['{"a":NaN}', /unexpected/],
    ['{"a":"x\ny"}', /control character/],
    ["[".repeat(65) + "]".repeat(65), /deeper than 64/],
    ['{"a":1,}', /expected a key/],
  ])("%j", (text, problem) => {
    const r = parseStrictJson(Buffer.from(text));
    expect(r.ok).toBe(false);
    expect(r.ok ? "" : r.problem).toMatch(problem);
  });

  it("refuses bytes that are not UTF-8", () => {
    expect(parseStrictJson(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d])).ok).toBe(false);
  });

  it("reads `__proto__` as a plain key", () => {
    const r = parseStrictJson(Buffer.from('{"__proto__":{"x":1}}'));
    expect(r.ok && Object.keys(r.value as object)).toEqual(["__proto__"]);
  });

  it("agrees with JSON.parse on every JSON text without duplicate keys (property)", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (value) => {
        const text = JSON.stringify(value);
        const r = parseStrictJson(Buffer.from(text));
        expect(r.ok).toBe(true);
        expect(JSON.stringify(r.ok ? r.value : undefined)).toBe(JSON.stringify(JSON.parse(text)));
      }),
      { numRuns: 2000 },
    );
  });

  it("never throws on arbitrary bytes (property)", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        parseStrictJson(bytes);
      }),
      { numRuns: 3000 },
    );
  });
});

describe("readManifest: the manifest as Go clients read it", () => {
  it("reads an ordinary manifest and index", () => {
    const m = read(`{"schemaVersion":2,"mediaType":"${OCI}","config":${layer},"layers":[${layer}]}`);
    expect(m.ok && m.manifest.layers?.length).toBe(1);
    const i = read(`{"schemaVersion":2,"mediaType":"${INDEX}","manifests":[${layer}]}`, INDEX);
    expect(i.ok && i.manifest.manifests?.length).toBe(1);
  });

  it.each([
    ["Layers", /"Layers".*read as "layers"/],
    ["LAYERS", /read as "layers"/],
    ["layer\u017f", /read as "layers"/],
    ["Mediatype", /read as "mediaType"/],
    ["\u212aeys", undefined],
  ])("a key Go folds onto a field: %j", (key, problem) => {
    const text = `{"schemaVersion":2,"mediaType":"${OCI}","config":${layer},"layers":[${layer}],"${key}":[]}`;
    if (problem) expect(problemOf(text)).toMatch(problem);
    else expect(problemOf(text)).toBeUndefined();
  });

  it("folding inside descriptors and platforms", () => {
    expect(problemOf(`{"schemaVersion":2,"layers":[{"Digest":"${D}","digest":"${D}"}]}`)).toMatch(
      /layers\[0\].*"Digest"/,
    );
    expect(
      problemOf(
        `{"schemaVersion":2,"mediaType":"${INDEX}","manifests":[{"digest":"${D}","platform":{"OS":"linux"}}]}`,
        INDEX,
      ),
    ).toMatch(/platform.*"OS"/);
    // Annotations are a Go map: case-sensitive, no folding.
    expect(problemOf(`{"schemaVersion":2,"layers":[],"annotations":{"A":"1","a":"2"}}`)).toBeUndefined();
  });

  it("wrong types, mixed kinds, and a body that contradicts the Content-Type", () => {
    expect(problemOf(`{"schemaVersion":"2"}`)).toMatch(/schemaVersion/);
    expect(problemOf(`{"schemaVersion":2.5}`)).toMatch(/schemaVersion/);
    expect(problemOf(`{"schemaVersion":2,"layers":{}}`)).toMatch(/layers is not an array/);
    expect(problemOf(`{"schemaVersion":2,"layers":[{"size":-1}]}`)).toMatch(/size/);
    expect(problemOf(`{"schemaVersion":2,"annotations":{"a":1}}`)).toMatch(/annotations/);
    expect(problemOf(`{"schemaVersion":2,"layers":[${layer}],"manifests":[]}`)).toMatch(/both image fields/);
    expect(problemOf(`{"schemaVersion":2,"mediaType":"${INDEX}","layers":[${layer}]}`, OCI)).toMatch(
      /differs/,
    );
    expect(problemOf(`{"schemaVersion":2,"layers":[${layer}]}`, INDEX)).toMatch(/served as an index/);
    expect(problemOf(`{"schemaVersion":2,"manifests":[]}`, OCI)).toMatch(/served as an image manifest/);
    expect(problemOf(`{"schemaVersion":2,"layers":[],"fsLayers":[]}`, OCI)).toMatch(/schema 1/);
    expect(problemOf("[]")).toMatch(/not a JSON object/);
  });

  it("goFoldAscii folds like Go's EqualFold against ASCII names", () => {
    expect(goFoldAscii("LAYERS")).toBe("layers");
    expect(goFoldAscii("layer\u017f")).toBe("layers");
    expect(goFoldAscii("\u212a")).toBe("k");
    expect(goFoldAscii("lay\u00e9rs")).toBeUndefined();
  });

  it("any key that case-folds to a manifest field but differs from it is refused (property)", () => {
    const fields = ["layers", "config", "manifests", "mediaType", "schemaVersion", "subject", "annotations"];
    fc.assert(
      fc.property(
        fc.constantFrom(...fields),
        fc.array(fc.boolean(), { minLength: 13, maxLength: 13 }),
        (field, flips) => {
          const variant = [...field]
            .map((c, i) => (flips[i] ? (c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase()) : c))
            .join("");
          fc.pre(variant !== field);
          const text = `{"schemaVersion":2,"${variant}":null}`;
          expect(problemOf(text)).toMatch(/Go clients read as/);
        },
      ),
      { numRuns: 500 },
    );
  });
});
