import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  foldedKeyProblem,
  goFoldAscii,
  isImageManifestMediaType,
  isIndexMediaType,
  mediaTypeEssence,
  readManifest,
} from "./manifest.ts";
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

describe("readManifest: exact rules and messages", () => {
  const V1 = MediaType.dockerManifestV1;
  const V1S = MediaType.dockerManifestV1Signed;
  const LIST = MediaType.dockerManifestList;
  const DOCKER = MediaType.dockerManifest;
  // Unlike read/problemOf above, an omitted type here means "Content-Type unknown".
  const manifestOf = (text: string, type?: string) => {
    const r = readManifest(Buffer.from(text), type);
    if (!r.ok) throw new Error(`expected ${text} to read: ${r.problem}`);
    return r.manifest;
  };
  const problemOf = (text: string, type?: string) => {
    const r = readManifest(Buffer.from(text), type);
    return r.ok ? undefined : r.problem;
  };

  it("prefixes JSON problems", () => {
    expect(problemOf('{"a":1,"a":2}')).toBe('its JSON duplicate key "a"');
    expect(problemOf("{")).toBe("its JSON expected a key at offset 1");
  });

  it.each([
    ["[]", "the manifest is not a JSON object"],
    ['"x"', "the manifest is not a JSON object"],
    ["null", "the manifest is not a JSON object"],
    ['{"Layers":[]}', 'the manifest has the key "Layers", which Go clients read as "layers"'],
    ['{"mediaType":1}', "the manifest's mediaType is not a string"],
    ['{"artifactType":[]}', "the manifest's artifactType is not a string"],
    ['{"schemaVersion":-1}', "schemaVersion is not a non-negative integer"],
    ['{"schemaVersion":"2"}', "schemaVersion is not a non-negative integer"],
    ['{"schemaVersion":1e300}', "schemaVersion is not a non-negative integer"],
    ['{"config":"x"}', "config is not a JSON object"],
    ['{"config":1}', "config is not a JSON object"],
    ['{"config":[]}', "config is not a JSON object"],
    ['{"subject":"x"}', "subject is not a JSON object"],
    ['{"layers":["x"]}', "layers[0] is not a JSON object"],
    ['{"layers":{}}', "layers is not an array"],
    ['{"manifests":"x"}', "manifests is not an array"],
    ['{"layers":[{},{"size":1.5}]}', "layers[1].size is not a non-negative integer"],
    ['{"layers":[{"size":-1}]}', "layers[0].size is not a non-negative integer"],
    ['{"layers":[{"size":"1"}]}', "layers[0].size is not a non-negative integer"],
    ['{"layers":[{"size":9007199254740992}]}', "layers[0].size is not a non-negative integer"],
    ['{"layers":[{"urls":"x"}]}', "layers[0].urls is not an array of strings"],
    ['{"layers":[{"urls":[1]}]}', "layers[0].urls is not an array of strings"],
    ['{"layers":[{"urls":["a",1]}]}', "layers[0].urls is not an array of strings"],
    ['{"layers":[{"data":1}]}', "layers[0]'s data is not a string"],
    ['{"layers":[{"mediaType":1}]}', "layers[0]'s mediaType is not a string"],
    ['{"layers":[{"digest":1}]}', "layers[0]'s digest is not a string"],
    ['{"layers":[{"artifactType":1}]}', "layers[0]'s artifactType is not a string"],
    ['{"layers":[{"annotations":{"a":1}}]}', "layers[0].annotations has a value that is not a string"],
    ['{"layers":[{"annotations":[]}]}', "layers[0].annotations is not a JSON object"],
    ['{"annotations":"x"}', "the manifest's annotations is not a JSON object"],
    ['{"annotations":{"a":null}}', "the manifest's annotations has a value that is not a string"],
    ['{"manifests":[{"platform":"x"}]}', "manifests[0].platform is not a JSON object"],
    [
      '{"manifests":[{"platform":{"Variant":"v8"}}]}',
      'manifests[0].platform has the key "Variant", which Go clients read as "variant"',
    ],
    ['{"subject":{"Size":1}}', 'subject has the key "Size", which Go clients read as "size"'],
    [
      '{"config":{},"manifests":[]}',
      "it has both image fields (config, layers) and index fields (manifests)",
    ],
  ])("%s: %s", (text, problem) => {
    expect(problemOf(text)).toBe(problem);
  });

  it("reads every field of a descriptor", () => {
    const m = manifestOf(
      `{"schemaVersion":0,"artifactType":"a/b","config":{"mediaType":"c/d","digest":"${D}","size":0,"data":"e30=","artifactType":"x/y","annotations":{"k":"v"},"urls":["https://x"]},"layers":[],"subject":{"digest":"${D}","size":2}}`,
    );
    expect(m.schemaVersion).toBe(0);
    expect(m.artifactType).toBe("a/b");
    expect(m.layers).toEqual([]);
    expect(m.config).toEqual({
      mediaType: "c/d",
      digest: D,
      size: 0,
      artifactType: "x/y",
      annotations: { k: "v" },
      hasPlatform: false,
      urls: ["https://x"],
      hasData: true,
    });
    expect(m.subject).toMatchObject({ digest: D, size: 2, hasData: false, urls: undefined });
    const i = manifestOf(
      `{"manifests":[{"digest":"${D}","platform":{"os":"linux","os.version":"1"}}]}`,
      INDEX,
    );
    expect(i.manifests?.[0]).toMatchObject({ hasPlatform: true, urls: undefined, size: undefined });
  });

  it("reads null fields as absent", () => {
    const m = manifestOf(
      '{"schemaVersion":null,"mediaType":null,"config":null,"layers":null,"manifests":null,"subject":null,"annotations":null,"fsLayers":null,"history":null,"signatures":null}',
      OCI,
    );
    expect(m).toEqual({
      schemaVersion: undefined,
      mediaType: undefined,
      artifactType: undefined,
      config: undefined,
      layers: undefined,
      manifests: undefined,
      subject: undefined,
      annotations: {},
      schema1: false,
    });
    const d = manifestOf(
      '{"layers":[{"size":null,"urls":null,"platform":null,"data":null,"annotations":null}]}',
    );
    expect(d.layers?.[0]).toMatchObject({
      size: undefined,
      urls: undefined,
      hasPlatform: false,
      hasData: false,
    });
    expect(d.layers?.[0]?.annotations).toEqual({});
    expect(manifestOf("{}")).toMatchObject({ schemaVersion: undefined, config: undefined, schema1: false });
  });

  it.each(["fsLayers", "history", "signatures"])("%s marks a Docker schema 1 manifest", (field) => {
    expect(manifestOf(`{"schemaVersion":1,"${field}":[]}`, V1).schema1).toBe(true);
    expect(manifestOf(`{"schemaVersion":1,"${field}":[]}`, V1S).schema1).toBe(true);
    expect(manifestOf(`{"schemaVersion":1,"${field}":[]}`).schema1).toBe(true);
    expect(problemOf(`{"schemaVersion":2,"${field}":[]}`, DOCKER)).toBe(
      `it is served as ${DOCKER} but has Docker schema 1 fields`,
    );
  });

  it("checks the body's kind against the served Content-Type", () => {
    // Schema 1 types are known served types: a different mediaType in the body is refused.
    expect(problemOf(`{"mediaType":"${OCI}"}`, V1)).toBe(
      `its mediaType "${OCI}" differs from the Content-Type ${V1}`,
    );
    expect(problemOf(`{"mediaType":"${OCI}"}`, `${V1S}; charset=utf-8`)).toMatch(/differs/);
    expect(problemOf(`{"manifests":[]}`, V1)).toBe(
      `it is served as an image manifest (${V1}) but has index fields`,
    );
    expect(problemOf(`{"manifests":[]}`, DOCKER)).toMatch(/served as an image manifest/);
    expect(problemOf(`{"config":{}}`, LIST)).toBe(
      `it is served as an index (${LIST}) but has image manifest fields`,
    );
    expect(problemOf(`{"fsLayers":[]}`, INDEX)).toMatch(/served as an index/);
    // An unknown served type: the body's own mediaType decides the kind.
    expect(problemOf(`{"mediaType":"${INDEX}","layers":[]}`, "application/json")).toMatch(
      /served as an index/,
    );
    expect(problemOf(`{"mediaType":"${OCI}","manifests":[]}`)).toMatch(/served as an image manifest/);
    expect(problemOf(`{"mediaType":"${OCI}","history":[]}`, "application/json")).toMatch(/schema 1/);
    expect(manifestOf(`{"mediaType":"application/x-other","fsLayers":[],"manifests":[]}`).schema1).toBe(true);
    expect(manifestOf(`{"mediaType":"${OCI}","layers":[]}`, "text/plain").mediaType).toBe(OCI);
    // The served type wins over a matching body.
    expect(
      manifestOf(`{"mediaType":"${INDEX}","manifests":[]}`, ` ${INDEX.toUpperCase()} ; x=y`).manifests,
    ).toEqual([]);
  });
});

describe("media type helpers", () => {
  it("mediaTypeEssence takes type/subtype, lower case, without parameters", () => {
    expect(mediaTypeEssence(undefined)).toBeUndefined();
    expect(mediaTypeEssence("")).toBeUndefined();
    expect(mediaTypeEssence(" ; charset=utf-8")).toBeUndefined();
    expect(mediaTypeEssence(" Application/JSON ; charset=utf-8")).toBe("application/json");
    expect(mediaTypeEssence("a/b")).toBe("a/b");
  });

  it("classifies manifest media types", () => {
    expect(isIndexMediaType(INDEX)).toBe(true);
    expect(isIndexMediaType(MediaType.dockerManifestList)).toBe(true);
    expect(isIndexMediaType(OCI)).toBe(false);
    expect(isIndexMediaType(undefined)).toBe(false);
    expect(isImageManifestMediaType(OCI)).toBe(true);
    expect(isImageManifestMediaType(MediaType.dockerManifest)).toBe(true);
    expect(isImageManifestMediaType(INDEX)).toBe(false);
    expect(isImageManifestMediaType(MediaType.dockerManifestV1)).toBe(false);
    expect(isImageManifestMediaType(undefined)).toBe(false);
  });

  it("goFoldAscii lowers exactly A-Z and refuses other non-ASCII", () => {
    expect(goFoldAscii("AZaz@[`{09-_.")).toBe("azaz@[`{09-_.");
    expect(goFoldAscii("\u0080")).toBeUndefined();
    expect(goFoldAscii("\u007f")).toBe("\u007f");
    expect(goFoldAscii("\u017f\u212a")).toBe("sk");
    expect(goFoldAscii("")).toBe("");
  });

  it("foldedKeyProblem names the key and field, and accepts exact and unrelated keys", () => {
    const fields = ["mediaType", "size"];
    expect(
      foldedKeyProblem(Object.assign(Object.create(null), { mediaType: 1, other: 2 }), fields, "w"),
    ).toBe(undefined);
    expect(foldedKeyProblem(Object.assign(Object.create(null), { "\u00e9": 1, SIZE: 2 }), fields, "w")).toBe(
      'w has the key "SIZE", which Go clients read as "size"',
    );
    expect(foldedKeyProblem(Object.assign(Object.create(null), { \u017fize: 1 }), fields, "w")).toMatch(
      /read as "size"/,
    );
  });
});
