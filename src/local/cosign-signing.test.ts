import { verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { computeDigest, MediaType } from "../oci/index.ts";
import { judgeWithKeys } from "../verify/authorities.test-helpers.ts";
import { COSIGN_SIGNATURE_ANNOTATION, parseTrustedKey, SIMPLESIGNING_MEDIA_TYPE } from "../verify/index.ts";
import {
  createLegacySignature,
  generateSigningKey,
  signatureLayersOf,
  simpleSigningPayload,
} from "./cosign-signing.ts";

const DIGEST = `sha256:${"ab".repeat(32)}` as const;

describe("simpleSigningPayload", () => {
  it("is cosign's payload, byte for byte", () => {
    expect(simpleSigningPayload(DIGEST, "127.0.0.1:5000/demo/signed").toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/demo/signed"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
    );
  });
});

describe("createLegacySignature", () => {
  it("writes the .sig manifest: one simplesigning layer with the base64 ECDSA signature over the payload", () => {
    const key = generateSigningKey();
    const sig = createLegacySignature({ manifestDigest: DIGEST, dockerReference: "r/demo", key });
    expect(sig.tag).toBe(`sha256-${"ab".repeat(32)}.sig`);
    expect(sig.manifestDigest).toBe(computeDigest(sig.manifest));
    for (const blob of sig.blobs) expect(blob.digest).toBe(computeDigest(blob.bytes));
    const manifest = JSON.parse(sig.manifest.toString());
    expect(manifest.mediaType).toBe(MediaType.ociManifest);
    expect(manifest.layers).toHaveLength(1);
    const [layer] = manifest.layers;
    expect(layer.mediaType).toBe(SIMPLESIGNING_MEDIA_TYPE);
    expect(layer.digest).toBe(computeDigest(sig.payload));
    expect(layer.digest).toBe(sig.payloadDigest);
    expect(layer.size).toBe(sig.payload.length);
    const signature = Buffer.from(layer.annotations[COSIGN_SIGNATURE_ANNOTATION], "base64");
    expect(verify("sha256", sig.payload, key.publicKeyPem, signature)).toBe(true);
    expect(JSON.parse(sig.blobs[1]?.bytes.toString() ?? "").rootfs.diff_ids).toEqual([layer.digest]);
  });

  it("appends to the layers already there, and signs a payload naming another digest when asked", () => {
    const key = generateSigningKey();
    const first = createLegacySignature({ manifestDigest: DIGEST, key });
    const other = `sha256:${"cd".repeat(32)}`;
    const second = createLegacySignature({
      manifestDigest: DIGEST,
      key,
      payloadDigest: other,
      existingLayers: signatureLayersOf(first.manifest),
    });
    const layers = signatureLayersOf(second.manifest);
    expect(layers.map((l) => l.digest)).toEqual([first.payloadDigest, second.payloadDigest]);
    expect(JSON.parse(second.payload.toString()).critical.image["docker-manifest-digest"]).toBe(other);
    expect(JSON.parse(second.blobs[1]?.bytes.toString() ?? "").rootfs.diff_ids).toEqual(
      layers.map((l) => l.digest),
    );
  });

  it("is what verify/ accepts for the signing key, and only for it", () => {
    const key = generateSigningKey();
    const sig = createLegacySignature({ manifestDigest: DIGEST, dockerReference: "r/demo", key });
    const layer = JSON.parse(sig.manifest.toString()).layers[0];
    const evidence = [
      {
        format: "cosign-legacy" as const,
        source: sig.manifestDigest,
        layers: [
          {
            mediaType: layer.mediaType,
            digest: layer.digest,
            annotations: layer.annotations,
            payload: sig.payload,
          },
        ],
      },
    ];
    const trusted = parseTrustedKey({ name: "demo", pem: key.publicKeyPem });
    expect(judgeWithKeys({ digest: DIGEST, keys: [trusted], evidence })).toMatchObject({
      status: "verified",
      key: "demo",
      keyFingerprint: trusted.fingerprint,
    });
    const other = parseTrustedKey({ name: "other", pem: generateSigningKey().publicKeyPem });
    expect(judgeWithKeys({ digest: DIGEST, keys: [other], evidence })).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
    });
  });
});
