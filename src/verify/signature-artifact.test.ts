import { describe, expect, it } from "vitest";
import { FIXTURES, vectorText } from "../../test/support/vectors.ts";
import { ALL_MANIFEST_TYPES, readManifest } from "../oci/index.ts";
import {
  type ArtifactBlobKind,
  checkArtifactBlob,
  readsAsTar,
  signatureArtifactClaim,
} from "./signature-artifact.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json";
const DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json";
const IMAGE_CONFIG = "application/vnd.oci.image.config.v1+json";
const TAR_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip";
const SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
const DSSE = "application/vnd.dsse.envelope.v1+json";
const BUNDLE = "application/vnd.dev.sigstore.bundle.v0.3+json";
const EMPTY = "application/vnd.oci.empty.v1+json";
const d = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

/** Served as its own mediaType when that is a manifest type (else as an OCI manifest or index). */
function isArtifact(value: unknown, servedType?: string): boolean {
  const body = value as { mediaType?: unknown; manifests?: unknown } | null;
  const own = typeof body?.mediaType === "string" ? body.mediaType : undefined;
  const served =
    servedType ??
    (own !== undefined && (ALL_MANIFEST_TYPES.includes(own) || own === "application/json")
      ? own
      : body && typeof body === "object" && "manifests" in body
        ? OCI_INDEX
        : OCI_MANIFEST);
  const reading = readManifest(Buffer.from(JSON.stringify(value) ?? "null"), served);
  return reading.ok && signatureArtifactClaim(reading.manifest, served) !== undefined;
}

const layer = (mediaType: string, n = 1) => ({ mediaType, digest: d(n), size: 100 });
const image = (layers: unknown[], extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  config: { mediaType: IMAGE_CONFIG, digest: d(99), size: 10 },
  layers,
  ...extra,
});
const bundleReferrer = (extra: Record<string, unknown> = {}) => ({
  schemaVersion: 2,
  mediaType: OCI_MANIFEST,
  artifactType: BUNDLE,
  config: { mediaType: EMPTY, digest: d(44), size: 2 },
  layers: [layer(BUNDLE)],
  subject: { mediaType: OCI_MANIFEST, digest: d(7), size: 500 },
  ...extra,
});

describe("isSignatureArtifactManifest: signature artifacts pass by content", () => {
  it("a legacy cosign .sig manifest (OCI and Docker v2 media types, one or many simplesigning layers)", () => {
    expect(isArtifact(image([layer(SIMPLESIGNING)]))).toBe(true);
    expect(isArtifact(image([layer(SIMPLESIGNING, 1), layer(SIMPLESIGNING, 2)]))).toBe(true);
    expect(isArtifact(image([layer(SIMPLESIGNING)], { mediaType: DOCKER_MANIFEST }))).toBe(true);
    const noMediaType: Record<string, unknown> = image([layer(SIMPLESIGNING)]);
    delete noMediaType.mediaType;
    expect(isArtifact(noMediaType)).toBe(true);
  });

  it("a legacy cosign .att manifest (DSSE envelope layers)", () => {
    expect(isArtifact(image([layer(DSSE)]))).toBe(true);
  });

  it("a cosign v3 bundle referrer: artifactType, or config.mediaType, plus bundle layers", () => {
    expect(isArtifact(bundleReferrer())).toBe(true);
    const configStyle = bundleReferrer({ config: { mediaType: BUNDLE, digest: d(44), size: 2 } });
    delete (configStyle as Record<string, unknown>).artifactType;
    expect(isArtifact(configStyle)).toBe(true);
    expect(
      isArtifact(bundleReferrer({ layers: [layer("application/vnd.dev.sigstore.bundle+json;version=0.2")] })),
    ).toBe(true);
  });

  it("a referrers index (tag schema fallback): every entry has an artifactType; empty is fine", () => {
    const index = (manifests: unknown[]) => ({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
    expect(
      isArtifact(index([{ mediaType: OCI_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE }])),
    ).toBe(true);
    expect(
      isArtifact(
        index([
          { mediaType: OCI_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE },
          { mediaType: OCI_MANIFEST, digest: d(2), size: 9, artifactType: "application/spdx+json" },
        ]),
      ),
    ).toBe(true);
    expect(isArtifact(index([]))).toBe(true);
  });

  it("a referrers index whose entries carry no artifactType (cosign v3 on GHCR, distribution 2.8)", () => {
    const index = (manifests: unknown[]) => ({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
    expect(isArtifact(index([{ mediaType: OCI_MANIFEST, digest: d(1), size: 9 }]))).toBe(true);
    expect(
      isArtifact(
        index([
          { mediaType: OCI_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE },
          {
            mediaType: OCI_MANIFEST,
            digest: d(2),
            size: 9,
            artifactType: "application/vnd.oci.empty.v1+json",
          },
          { mediaType: OCI_MANIFEST, digest: d(3), size: 9 },
        ]),
      ),
    ).toBe(true);
  });
});

describe("isSignatureArtifactManifest: runnable or unknown content does not pass", () => {
  it("an ordinary image (whatever tag it was pushed under)", () => {
    expect(isArtifact(image([layer(TAR_GZIP)]))).toBe(false);
    expect(isArtifact(image([layer(TAR_GZIP)], { mediaType: DOCKER_MANIFEST }))).toBe(false);
  });

  it("an image with a signature layer next to a filesystem layer", () => {
    expect(isArtifact(image([layer(SIMPLESIGNING), layer(TAR_GZIP, 2)]))).toBe(false);
    expect(isArtifact(image([layer(TAR_GZIP), layer(DSSE, 2)]))).toBe(false);
  });

  it("an image claiming a bundle artifactType (or config type) but carrying filesystem layers", () => {
    expect(isArtifact(image([layer(TAR_GZIP)], { artifactType: BUNDLE }))).toBe(false);
    expect(isArtifact(bundleReferrer({ layers: [layer(BUNDLE), layer(TAR_GZIP, 2)] }))).toBe(false);
    expect(
      isArtifact(image([layer(TAR_GZIP)], { config: { mediaType: BUNDLE, digest: d(1), size: 2 } })),
    ).toBe(false);
  });

  it("bundle layers without a bundle artifactType or config type", () => {
    expect(isArtifact(image([layer(BUNDLE)]))).toBe(false);
  });

  it("no layers, malformed layers", () => {
    expect(isArtifact(image([]))).toBe(false);
    expect(isArtifact(bundleReferrer({ layers: [] }))).toBe(false);
    expect(isArtifact(image([{ digest: d(1) }]))).toBe(false);
    expect(isArtifact(image([layer(SIMPLESIGNING), "x"]))).toBe(false);
    expect(isArtifact({ ...image([layer(SIMPLESIGNING)]), layers: "nope" })).toBe(false);
  });

  it("a multi-platform index (an entry with a platform, artifactType or not), or a Docker manifest list", () => {
    const platformEntry = {
      mediaType: OCI_MANIFEST,
      digest: d(1),
      size: 9,
      platform: { architecture: "amd64", os: "linux" },
    };
    expect(isArtifact({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [platformEntry] })).toBe(false);
    expect(
      isArtifact({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ ...platformEntry, artifactType: BUNDLE }],
      }),
    ).toBe(false);
    expect(
      isArtifact({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE },
          {
            mediaType: OCI_MANIFEST,
            digest: d(2),
            size: 9,
            artifactType: BUNDLE,
            platform: { os: "linux", architecture: "amd64" },
          },
        ],
      }),
    ).toBe(false);
    expect(
      isArtifact({
        schemaVersion: 2,
        mediaType: DOCKER_LIST,
        manifests: [{ mediaType: DOCKER_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE }],
      }),
    ).toBe(false);
    expect(isArtifact({ schemaVersion: 2, manifests: [] })).toBe(false);
    expect(
      isArtifact({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [],
        layers: [layer(TAR_GZIP)],
      }),
    ).toBe(false);
  });

  it("schema 1 manifests (the c/image fixture), other schema versions, and non-objects", () => {
    expect(isArtifact(JSON.parse(vectorText(`${FIXTURES}/v2s1-invalid-signatures.manifest.json`)))).toBe(
      false,
    );
    expect(isArtifact({ ...image([layer(SIMPLESIGNING)]), schemaVersion: 3 })).toBe(false);
    expect(isArtifact({ ...image([layer(SIMPLESIGNING)]), mediaType: "application/json" })).toBe(false);
    for (const junk of [null, undefined, 1, "manifest", [], [image([layer(SIMPLESIGNING)])]]) {
      expect(isArtifact(junk)).toBe(false);
    }
  });

  it("the real signed manifests of the fixtures are images, not signature artifacts", () => {
    for (const name of [
      "dir-img-cosign-valid",
      "dir-img-cosign-pki-valid",
      "dir-img-cosign-key-rekor-valid",
    ]) {
      expect(isArtifact(JSON.parse(vectorText(`${FIXTURES}/${name}/manifest.json`)))).toBe(false);
    }
  });
});

describe("signatureArtifactClaim: what must be proved, blob by blob", () => {
  const claimOf = (value: unknown, served = OCI_MANIFEST) => {
    const reading = readManifest(Buffer.from(JSON.stringify(value)), served);
    if (!reading.ok) throw new Error(reading.problem);
    return signatureArtifactClaim(reading.manifest, served);
  };

  it("lists each distinct layer blob once with its kind, and the config unless it is the empty blob", () => {
    const many = image(Array.from({ length: 1000 }, () => layer(SIMPLESIGNING, 5)));
    expect(claimOf(many)?.blobs).toEqual([
      { digest: d(5), kind: "simplesigning" },
      { digest: d(99), kind: "image-config" },
    ]);
    const empty = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    expect(claimOf(bundleReferrer({ config: { mediaType: EMPTY, digest: empty, size: 2 } }))?.blobs).toEqual([
      { digest: d(1), kind: "sigstore-bundle" },
    ]);
  });

  it("refuses foreign-layer urls, embedded data, one blob under two kinds, and non-manifest served types", () => {
    expect(claimOf(image([{ ...layer(SIMPLESIGNING), urls: ["http://x.test/l"] }]))).toBeUndefined();
    expect(claimOf(image([{ ...layer(SIMPLESIGNING), data: "e30=" }]))).toBeUndefined();
    expect(claimOf(image([layer(SIMPLESIGNING, 3), layer(DSSE, 3)]))).toBeUndefined();
    expect(claimOf(image([layer(SIMPLESIGNING)]), "application/json")).toBeUndefined();
    expect(
      claimOf(image([layer(SIMPLESIGNING)], { config: { mediaType: TAR_GZIP, digest: d(9), size: 1 } })),
    ).toBeUndefined();
  });
});

describe("checkArtifactBlob: a signature artifact's blobs are the inert JSON their types name", () => {
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const ok: Record<ArtifactBlobKind, Buffer> = {
    simplesigning: json({ critical: { type: "cosign container image signature", image: {}, identity: {} } }),
    "dsse-envelope": json({ payloadType: "application/vnd.in-toto+json", payload: "e30=", signatures: [] }),
    "sigstore-bundle": json({ mediaType: BUNDLE, verificationMaterial: {}, dsseEnvelope: {} }),
    "image-config": json({ architecture: "", os: "", config: {}, rootfs: { type: "layers", diff_ids: [] } }),
  };

  it("accepts the documents cosign writes", () => {
    for (const [kind, bytes] of Object.entries(ok)) {
      expect(checkArtifactBlob(kind as ArtifactBlobKind, bytes), kind).toBeUndefined();
    }
  });

  it("refuses a tarball, other JSON, a runnable config, and a config Go reads differently", () => {
    const tar = tarWithFile("evil.sh", "#!/bin/sh\necho pwned\n");
    for (const kind of Object.keys(ok) as ArtifactBlobKind[]) {
      expect(checkArtifactBlob(kind, tar), kind).toMatch(/tar/);
      if (kind !== "image-config")
        expect(checkArtifactBlob(kind, json({ hello: "world" })), kind).toBeDefined();
      expect(checkArtifactBlob(kind, Buffer.from("not json")), kind).toBeDefined();
    }
    expect(checkArtifactBlob("image-config", json({ config: { Entrypoint: ["/bin/sh"] } }))).toMatch(
      /Entrypoint/,
    );
    expect(checkArtifactBlob("image-config", json({ config: { Cmd: ["sh"] } }))).toMatch(/Cmd/);
    expect(checkArtifactBlob("image-config", json({ config: { cmd: ["sh"] } }))).toMatch(/Go clients read/);
    expect(checkArtifactBlob("image-config", json({ Config: { Cmd: ["sh"] } }))).toMatch(/Go clients read/);
  });

  it("refuses a JSON document built to also be a valid tar archive (a polyglot)", () => {
    const polyglot = jsonTarPolyglot();
    expect(JSON.parse(polyglot.toString("utf8"))).toBeTruthy();
    expect(readsAsTar(polyglot)).toBe(true);
    expect(checkArtifactBlob("simplesigning", polyglot)).toMatch(/tar/);
    expect(readsAsTar(ok.simplesigning)).toBe(false);
    expect(readsAsTar(Buffer.alloc(600, 0x20))).toBe(false);
  });
});

/** A ustar archive with one regular file (what `tar` writes), as Go's archive/tar reads it. */
function tarWithFile(name: string, content: string): Buffer {
  const header = Buffer.alloc(512);
  header.write(name, 0, "utf8");
  header.write("0000644\0", 100);
  header.write("0000000\0", 108);
  header.write("0000000\0", 116);
  header.write(`${content.length.toString(8).padStart(11, "0")}\0`, 124);
  header.write("00000000000\0", 136);
  header.write("        ", 148);
  header.write("0", 156);
  header.write("ustar\u000000", 257);
  let sum = 0;
  for (const b of header) sum += b;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148);
  const body = Buffer.alloc(Math.ceil(content.length / 512) * 512);
  body.write(content);
  return Buffer.concat([header, body, Buffer.alloc(1024)]);
}

/**
 * A simple-signing-shaped JSON text whose first 512 bytes are also a valid V7 tar header: the key
 * and padding are chosen so the octal fields land where archive/tar reads them and the checksum
 * field holds the block's own sum.
 */
function jsonTarPolyglot(): Buffer {
  const block = Buffer.alloc(512, 0x20);
  block.write('{"x":"', 0);
  // mode, uid, gid, size, mtime: octal digits padded with spaces (archive/tar trims spaces).
  block.write("0000644", 100);
  block.write("0000000", 108);
  block.write("0000000", 116);
  block.write("00000000000", 124);
  block.write("00000000000", 136);
  block.write("0", 156); // regular file
  block.write('","critical":{"type":"cosign container image signature","image":{}},"y":"', 200);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += i >= 148 && i < 156 ? 0x20 : (block[i] as number);
  block.write(sum.toString(8).padStart(7, "0"), 148);
  const tail = Buffer.from('"}');
  return Buffer.concat([block, tail]);
}
