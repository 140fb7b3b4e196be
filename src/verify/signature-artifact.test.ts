import { describe, expect, it } from "vitest";
import { isSignatureArtifactManifest } from "./signature-artifact.ts";
import { FIXTURES, vectorText } from "./test-vectors.ts";

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
    expect(isSignatureArtifactManifest(image([layer(SIMPLESIGNING)]))).toBe(true);
    expect(isSignatureArtifactManifest(image([layer(SIMPLESIGNING, 1), layer(SIMPLESIGNING, 2)]))).toBe(true);
    expect(isSignatureArtifactManifest(image([layer(SIMPLESIGNING)], { mediaType: DOCKER_MANIFEST }))).toBe(
      true,
    );
    const noMediaType: Record<string, unknown> = image([layer(SIMPLESIGNING)]);
    delete noMediaType.mediaType;
    expect(isSignatureArtifactManifest(noMediaType)).toBe(true);
  });

  it("a legacy cosign .att manifest (DSSE envelope layers)", () => {
    expect(isSignatureArtifactManifest(image([layer(DSSE)]))).toBe(true);
  });

  it("a cosign v3 bundle referrer: artifactType, or config.mediaType, plus bundle layers", () => {
    expect(isSignatureArtifactManifest(bundleReferrer())).toBe(true);
    const configStyle = bundleReferrer({ config: { mediaType: BUNDLE, digest: d(44), size: 2 } });
    delete (configStyle as Record<string, unknown>).artifactType;
    expect(isSignatureArtifactManifest(configStyle)).toBe(true);
    expect(
      isSignatureArtifactManifest(
        bundleReferrer({ layers: [layer("application/vnd.dev.sigstore.bundle+json;version=0.2")] }),
      ),
    ).toBe(true);
  });

  it("a referrers index (tag schema fallback): every entry has an artifactType; empty is fine", () => {
    const index = (manifests: unknown[]) => ({ schemaVersion: 2, mediaType: OCI_INDEX, manifests });
    expect(
      isSignatureArtifactManifest(
        index([{ mediaType: OCI_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE }]),
      ),
    ).toBe(true);
    expect(
      isSignatureArtifactManifest(
        index([
          { mediaType: OCI_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE },
          { mediaType: OCI_MANIFEST, digest: d(2), size: 9, artifactType: "application/spdx+json" },
        ]),
      ),
    ).toBe(true);
    expect(isSignatureArtifactManifest(index([]))).toBe(true);
  });
});

describe("isSignatureArtifactManifest: runnable or unknown content does not pass", () => {
  it("an ordinary image (whatever tag it was pushed under)", () => {
    expect(isSignatureArtifactManifest(image([layer(TAR_GZIP)]))).toBe(false);
    expect(isSignatureArtifactManifest(image([layer(TAR_GZIP)], { mediaType: DOCKER_MANIFEST }))).toBe(false);
  });

  it("an image with a signature layer next to a filesystem layer", () => {
    expect(isSignatureArtifactManifest(image([layer(SIMPLESIGNING), layer(TAR_GZIP, 2)]))).toBe(false);
    expect(isSignatureArtifactManifest(image([layer(TAR_GZIP), layer(DSSE, 2)]))).toBe(false);
  });

  it("an image claiming a bundle artifactType (or config type) but carrying filesystem layers", () => {
    expect(isSignatureArtifactManifest(image([layer(TAR_GZIP)], { artifactType: BUNDLE }))).toBe(false);
    expect(isSignatureArtifactManifest(bundleReferrer({ layers: [layer(BUNDLE), layer(TAR_GZIP, 2)] }))).toBe(
      false,
    );
    expect(
      isSignatureArtifactManifest(
        image([layer(TAR_GZIP)], { config: { mediaType: BUNDLE, digest: d(1), size: 2 } }),
      ),
    ).toBe(false);
  });

  it("bundle layers without a bundle artifactType or config type", () => {
    expect(isSignatureArtifactManifest(image([layer(BUNDLE)]))).toBe(false);
  });

  it("no layers, malformed layers", () => {
    expect(isSignatureArtifactManifest(image([]))).toBe(false);
    expect(isSignatureArtifactManifest(bundleReferrer({ layers: [] }))).toBe(false);
    expect(isSignatureArtifactManifest(image([{ digest: d(1) }]))).toBe(false);
    expect(isSignatureArtifactManifest(image([layer(SIMPLESIGNING), "x"]))).toBe(false);
    expect(isSignatureArtifactManifest({ ...image([layer(SIMPLESIGNING)]), layers: "nope" })).toBe(false);
  });

  it("a multi-platform index, a Docker manifest list, or an index with an entry lacking artifactType", () => {
    const platformEntry = {
      mediaType: OCI_MANIFEST,
      digest: d(1),
      size: 9,
      platform: { architecture: "amd64", os: "linux" },
    };
    expect(
      isSignatureArtifactManifest({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [platformEntry] }),
    ).toBe(false);
    expect(
      isSignatureArtifactManifest({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [{ ...platformEntry, artifactType: BUNDLE }],
      }),
    ).toBe(false);
    expect(
      isSignatureArtifactManifest({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [
          { mediaType: OCI_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE },
          { mediaType: OCI_MANIFEST, digest: d(2), size: 9 },
        ],
      }),
    ).toBe(false);
    expect(
      isSignatureArtifactManifest({
        schemaVersion: 2,
        mediaType: DOCKER_LIST,
        manifests: [{ mediaType: DOCKER_MANIFEST, digest: d(1), size: 9, artifactType: BUNDLE }],
      }),
    ).toBe(false);
    expect(isSignatureArtifactManifest({ schemaVersion: 2, manifests: [] })).toBe(false);
    expect(
      isSignatureArtifactManifest({
        schemaVersion: 2,
        mediaType: OCI_INDEX,
        manifests: [],
        layers: [layer(TAR_GZIP)],
      }),
    ).toBe(false);
  });

  it("schema 1 manifests (the c/image fixture), other schema versions, and non-objects", () => {
    expect(
      isSignatureArtifactManifest(
        JSON.parse(vectorText(`${FIXTURES}/v2s1-invalid-signatures.manifest.json`)),
      ),
    ).toBe(false);
    expect(isSignatureArtifactManifest({ ...image([layer(SIMPLESIGNING)]), schemaVersion: 3 })).toBe(false);
    expect(
      isSignatureArtifactManifest({ ...image([layer(SIMPLESIGNING)]), mediaType: "application/json" }),
    ).toBe(false);
    for (const junk of [null, undefined, 1, "manifest", [], [image([layer(SIMPLESIGNING)])]]) {
      expect(isSignatureArtifactManifest(junk)).toBe(false);
    }
  });

  it("the real signed manifests of the fixtures are images, not signature artifacts", () => {
    for (const name of [
      "dir-img-cosign-valid",
      "dir-img-cosign-pki-valid",
      "dir-img-cosign-key-rekor-valid",
    ]) {
      expect(isSignatureArtifactManifest(JSON.parse(vectorText(`${FIXTURES}/${name}/manifest.json`)))).toBe(
        false,
      );
    }
  });
});
