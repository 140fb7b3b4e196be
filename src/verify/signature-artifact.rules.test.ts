import { describe, expect, it } from "vitest";
import { MediaType, readManifest } from "../oci/index.ts";
import {
  type ArtifactBlobKind,
  checkArtifactBlob,
  readsAsTar,
  signatureArtifactClaim,
} from "./signature-artifact.ts";

// Deterministic edge cases of readsAsTar and checkArtifactBlob, one rule per assertion (the
// property tests next door compare readsAsTar with a model of Go's archive/tar on random blocks).

const BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";

/** A 512-byte block of `fill`, with `bytes` written at their offsets and the checksum field left as given. */
function block(fill: number, writes: Record<number, string | number[]> = {}): Buffer {
  const b = Buffer.alloc(512, fill);
  for (const [offset, value] of Object.entries(writes)) {
    if (typeof value === "string") b.write(value, Number(offset), "latin1");
    else Buffer.from(value).copy(b, Number(offset));
  }
  return b;
}

/** The sums Go compares the checksum field with (that field counted as eight spaces). */
function sums(b: Uint8Array): { unsigned: number; signed: number } {
  let unsigned = 0;
  let signed = 0;
  for (let i = 0; i < 512; i++) {
    const v = i >= 148 && i < 156 ? 0x20 : (b[i] as number);
    unsigned += v;
    signed += v > 127 ? v - 256 : v;
  }
  return { unsigned, signed };
}

function withField(b: Buffer, field: string): Buffer {
  const out = Buffer.from(b);
  out.write(field.padEnd(8, " ").slice(0, 8), 148, "latin1");
  return out;
}

const octal = (n: number, width = 6) => n.toString(8).padStart(width, "0");

describe("readsAsTar: Go's archive/tar header check", () => {
  const plain = block(0x61);
  const { unsigned } = sums(plain);

  it("reads a block whose checksum field holds the unsigned sum, in the spellings Go accepts", () => {
    for (const field of [
      `${octal(unsigned)}\0 `,
      `${octal(unsigned, 7)}\0`,
      ` ${octal(unsigned)} `,
      `\0${octal(unsigned)}\0`,
      octal(unsigned, 8),
      `${octal(unsigned)}  `,
      `${octal(unsigned, 5)}\0\0\0`,
      `${octal(unsigned, 7)} `,
    ]) {
      expect(readsAsTar(withField(plain, field)), JSON.stringify(field)).toBe(true);
    }
  });

  it("cuts the field at its first NUL, as Go's parseString does", () => {
    expect(readsAsTar(withField(plain, `${octal(unsigned)}\0x`))).toBe(true);
    expect(readsAsTar(withField(plain, `${octal(unsigned, 5)}\0xy`))).toBe(true);
  });

  it("refuses a field that is not all octal digits after trimming spaces and NULs", () => {
    expect(readsAsTar(withField(plain, `${octal(unsigned)}x `))).toBe(false);
    expect(readsAsTar(withField(plain, `\t${octal(unsigned)} `))).toBe(false);
    expect(readsAsTar(withField(plain, `+${octal(unsigned)} `))).toBe(false);
    expect(readsAsTar(withField(plain, `${octal(unsigned, 5)} 0`))).toBe(false);
    expect(readsAsTar(withField(plain, "8"))).toBe(false);
  });

  it("refuses a wrong checksum (off by one either way)", () => {
    expect(readsAsTar(withField(plain, `${octal(unsigned + 1)}\0 `))).toBe(false);
    expect(readsAsTar(withField(plain, `${octal(unsigned - 1)}\0 `))).toBe(false);
  });

  it("accepts the signed sum too (bytes above 127 count as negative)", () => {
    const high = block(0x61, { 0: [0xff, 0x80, 0x90], 500: [0xc0] });
    const s = sums(high);
    expect(s.signed).not.toBe(s.unsigned);
    expect(readsAsTar(withField(high, `${octal(s.signed)}\0 `))).toBe(true);
    expect(readsAsTar(withField(high, `${octal(s.unsigned)}\0 `))).toBe(true);
    expect(readsAsTar(withField(high, `${octal(s.signed + 256)}\0 `))).toBe(false);
  });

  it("counts every byte of the block, the first and the last, and the field as spaces", () => {
    const first = withField(block(0x61, { 0: "b" }), `${octal(unsigned)}\0 `);
    expect(readsAsTar(first)).toBe(false);
    const last = withField(block(0x61, { 511: "b" }), `${octal(unsigned)}\0 `);
    expect(readsAsTar(last)).toBe(false);
    const around = withField(block(0x61, { 147: "b", 156: "`" }), `${octal(unsigned)}\0 `);
    expect(readsAsTar(around)).toBe(true);
  });

  it("reads an empty (spaces and NULs) field as 0, which only a zero sum matches", () => {
    // Two bytes of 0x80 (-128 each) cancel the field's eight spaces in the signed sum.
    const zeroSigned = block(0, { 0: [0x80, 0x80] });
    expect(sums(zeroSigned).signed).toBe(0);
    expect(readsAsTar(withField(zeroSigned, ""))).toBe(true);
    expect(readsAsTar(withField(zeroSigned, "\0\0\0\0\0\0\0\0"))).toBe(true);
    const notZero = block(0, { 0: [0x80, 0x81] });
    expect(readsAsTar(withField(notZero, ""))).toBe(false);
    // An all-zero block (end of archive) has sums of 256 with the field as spaces: not a header.
    expect(readsAsTar(Buffer.alloc(512))).toBe(false);
    expect(readsAsTar(Buffer.alloc(1024, 0x20))).toBe(false);
  });

  it("needs a whole 512-byte block, and looks only at the first", () => {
    const header = withField(plain, `${octal(unsigned)}\0 `);
    expect(readsAsTar(header)).toBe(true);
    expect(readsAsTar(header.subarray(0, 511))).toBe(false);
    expect(readsAsTar(Buffer.concat([header, Buffer.from("trailing")]))).toBe(true);
    expect(readsAsTar(new Uint8Array())).toBe(false);
  });
});

describe("checkArtifactBlob: exact rules per kind", () => {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const check = (kind: ArtifactBlobKind, v: unknown) => checkArtifactBlob(kind, json(v));
  const KINDS: ArtifactBlobKind[] = ["simplesigning", "dsse-envelope", "sigstore-bundle", "image-config"];

  it("refuses what is not a strict-JSON object, for every kind", () => {
    for (const kind of KINDS) {
      expect(checkArtifactBlob(kind, Buffer.from('{"a":1,"a":2}'))).toBe(
        'it is not strict JSON: duplicate key "a"',
      );
      expect(check(kind, [])).toBe("it is not a JSON object");
      expect(check(kind, "x")).toBe("it is not a JSON object");
      expect(check(kind, null)).toBe("it is not a JSON object");
    }
  });

  it("simple-signing: critical, critical.type (a string) and critical.image (an object) are required", () => {
    const problem = "it is not a simple-signing payload (critical.type, critical.image)";
    expect(check("simplesigning", { critical: { type: "t", image: {} } })).toBeUndefined();
    expect(check("simplesigning", {})).toBe(problem);
    expect(check("simplesigning", { critical: [] })).toBe(problem);
    expect(check("simplesigning", { critical: { image: {} } })).toBe(problem);
    expect(check("simplesigning", { critical: { type: 1, image: {} } })).toBe(problem);
    expect(check("simplesigning", { critical: { type: "t" } })).toBe(problem);
    expect(check("simplesigning", { critical: { type: "t", image: "x" } })).toBe(problem);
  });

  it("DSSE: payloadType and payload (strings) and signatures (an array) are required", () => {
    const problem = "it is not a DSSE envelope (payloadType, payload, signatures)";
    const good = { payloadType: "p", payload: "", signatures: [] };
    expect(check("dsse-envelope", good)).toBeUndefined();
    expect(check("dsse-envelope", { ...good, payloadType: 1 })).toBe(problem);
    expect(check("dsse-envelope", { ...good, payload: null })).toBe(problem);
    expect(check("dsse-envelope", { ...good, signatures: {} })).toBe(problem);
    expect(check("dsse-envelope", { payload: "", signatures: [] })).toBe(problem);
  });

  it("Sigstore bundle: a bundle mediaType and a verificationMaterial object are required", () => {
    const problem = "it is not a Sigstore bundle (mediaType, verificationMaterial)";
    const good = { mediaType: BUNDLE, verificationMaterial: {} };
    expect(check("sigstore-bundle", good)).toBeUndefined();
    expect(
      check("sigstore-bundle", {
        ...good,
        mediaType: "application/vnd.dev.sigstore.bundle+json;version=0.1",
      }),
    ).toBeUndefined();
    expect(check("sigstore-bundle", { ...good, mediaType: 1 })).toBe(problem);
    expect(check("sigstore-bundle", { ...good, mediaType: "application/json" })).toBe(problem);
    expect(check("sigstore-bundle", { ...good, mediaType: `x${BUNDLE}` })).toBe(problem);
    expect(check("sigstore-bundle", { ...good, verificationMaterial: [] })).toBe(problem);
    expect(check("sigstore-bundle", { mediaType: BUNDLE })).toBe(problem);
  });

  it("image config: inert when config is absent, null, or sets neither Entrypoint nor Cmd", () => {
    expect(check("image-config", {})).toBeUndefined();
    expect(check("image-config", { config: null })).toBeUndefined();
    expect(check("image-config", { config: {} })).toBeUndefined();
    expect(check("image-config", { config: { Entrypoint: null, Cmd: null } })).toBeUndefined();
    expect(check("image-config", { config: { Entrypoint: [], Cmd: [], Env: ["A=1"] } })).toBeUndefined();
    expect(check("image-config", { architecture: "amd64", os: "linux", unknown: 1 })).toBeUndefined();
  });

  it("image config: refuses anything set to run, however it is spelled", () => {
    const runs = (field: string) => `the config sets ${field}: a signature artifact has nothing to run`;
    expect(check("image-config", { config: { Entrypoint: ["/bin/sh"] } })).toBe(runs("Entrypoint"));
    expect(check("image-config", { config: { Entrypoint: "/bin/sh" } })).toBe(runs("Entrypoint"));
    expect(check("image-config", { config: { Entrypoint: [""] } })).toBe(runs("Entrypoint"));
    expect(check("image-config", { config: { Entrypoint: {} } })).toBe(runs("Entrypoint"));
    expect(check("image-config", { config: { Cmd: ["sh"] } })).toBe(runs("Cmd"));
    expect(check("image-config", { config: { Cmd: false } })).toBe(runs("Cmd"));
    expect(check("image-config", { config: { Entrypoint: [], Cmd: ["sh"] } })).toBe(runs("Cmd"));
    expect(check("image-config", { config: "x" })).toBe("the config's config is not an object");
    expect(check("image-config", { config: [] })).toBe("the config's config is not an object");
    expect(check("image-config", { config: { CMD: ["sh"] } })).toBe(
      `the config's config has the key "CMD", which Go clients read as "Cmd"`,
    );
    expect(check("image-config", { config: { entrypoint: [] } })).toBe(
      `the config's config has the key "entrypoint", which Go clients read as "Entrypoint"`,
    );
    expect(check("image-config", { CONFIG: {} })).toBe(
      `the config has the key "CONFIG", which Go clients read as "config"`,
    );
    expect(check("image-config", { Architecture: "amd64" })).toBe(
      `the config has the key "Architecture", which Go clients read as "architecture"`,
    );
  });
});

describe("signatureArtifactClaim: exact claims", () => {
  const OCI = MediaType.ociManifest;
  const INDEX = MediaType.ociIndex;
  const SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json";
  const d = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;
  /** `served` null: no Content-Type known. */
  const claimOf = (value: unknown, served: string | null = OCI) => {
    const reading = readManifest(Buffer.from(JSON.stringify(value)), served ?? undefined);
    if (!reading.ok) throw new Error(reading.problem);
    return signatureArtifactClaim(reading.manifest, served ?? undefined);
  };
  const sig = (layers: unknown[], extra: Record<string, unknown> = {}) => ({
    schemaVersion: 2,
    mediaType: OCI,
    config: { mediaType: MediaType.ociConfig, digest: d(9), size: 2 },
    layers,
    ...extra,
  });

  it("names the kind of artifact", () => {
    expect(claimOf(sig([{ mediaType: SIMPLE, digest: d(1), size: 1 }]))).toEqual({
      kind: "legacy-signature",
      blobs: [
        { digest: d(1), kind: "simplesigning" },
        { digest: d(9), kind: "image-config" },
      ],
    });
    const referrer = sig([{ mediaType: BUNDLE, digest: d(1), size: 1 }], { artifactType: BUNDLE });
    expect(claimOf(referrer)).toEqual({
      kind: "bundle-referrer",
      blobs: [
        { digest: d(1), kind: "sigstore-bundle" },
        { digest: d(9), kind: "image-config" },
      ],
    });
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: [{ artifactType: BUNDLE, digest: d(1) }] };
    expect(claimOf(index, INDEX)).toEqual({ kind: "referrers-index", blobs: [] });
  });

  it("a referrers index must be served as, and say it is, an OCI index", () => {
    const index = { schemaVersion: 2, mediaType: INDEX, manifests: [] };
    expect(claimOf(index, null)).toBeUndefined();
    expect(claimOf(index, "application/json")).toBeUndefined();
    expect(claimOf({ schemaVersion: 2, manifests: [] }, INDEX)).toBeUndefined();
    // Entries need no artifactType (cosign v3 on GHCR writes none), but none may carry a platform.
    const entry = (artifactType: string | undefined, platform?: object) => ({
      artifactType,
      digest: d(1),
      platform,
    });
    expect(claimOf({ ...index, manifests: [entry(BUNDLE), entry(""), entry(undefined)] }, INDEX)).toEqual({
      kind: "referrers-index",
      blobs: [],
    });
    const linux = { os: "linux", architecture: "amd64" };
    expect(claimOf({ ...index, manifests: [entry(BUNDLE), entry(undefined, linux)] }, INDEX)).toBeUndefined();
  });

  it("needs a config, and every descriptor to carry a valid digest", () => {
    expect(claimOf({ schemaVersion: 2, mediaType: OCI, layers: [{ mediaType: SIMPLE, digest: d(1) }] })).toBe(
      undefined,
    );
    for (const digest of [undefined, "sha256:abc", `${d(1)}x`, `x${d(1)}`]) {
      expect(claimOf(sig([{ mediaType: SIMPLE, digest, size: 1 }])), String(digest)).toBeUndefined();
      const config = { mediaType: MediaType.ociConfig, digest, size: 2 };
      expect(claimOf(sig([{ mediaType: SIMPLE, digest: d(1) }], { config })), String(digest)).toBeUndefined();
    }
  });
});
