import { generateKeyPairSync, verify } from "node:crypto";
import { describe, expect, it } from "vitest";
import { computeDigest, MediaType } from "../oci/index.ts";
import {
  COSIGN_SIGNATURE_ANNOTATION,
  judgeSignatures,
  parseTrustedKey,
  SIMPLESIGNING_MEDIA_TYPE,
} from "../verify/index.ts";
import { createLegacySignature, createSimpleSigningPayload } from "./cosign-legacy-signature.ts";

const DIGEST = `sha256:${"ab".repeat(32)}` as const;

function keyPair() {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, pem: publicKey.export({ type: "spki", format: "pem" }) as string };
}

describe("createSimpleSigningPayload", () => {
  it("is cosign's payload, byte for byte", () => {
    expect(createSimpleSigningPayload(DIGEST, "127.0.0.1:5000/demo/signed").toString()).toBe(
      `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/demo/signed"},"image":{"docker-manifest-digest":"${DIGEST}"},"type":"cosign container image signature"},"optional":null}`,
    );
  });
});

describe("createLegacySignature", () => {
  it("writes the .sig manifest: one simplesigning layer with the base64 ECDSA signature over the payload", () => {
    const key = keyPair();
    const sig = createLegacySignature({
      manifestDigest: DIGEST,
      dockerReference: "r/demo",
      privateKey: key.privateKey,
    });
    expect(sig.tag).toBe(`sha256-${"ab".repeat(32)}.sig`);
    expect(sig.manifestDigest).toBe(computeDigest(sig.manifest));
    for (const blob of sig.blobs) expect(blob.digest).toBe(computeDigest(blob.bytes));
    const manifest = JSON.parse(sig.manifest.toString());
    expect(manifest.mediaType).toBe(MediaType.ociManifest);
    expect(manifest.layers).toHaveLength(1);
    const [layer] = manifest.layers;
    expect(layer.mediaType).toBe(SIMPLESIGNING_MEDIA_TYPE);
    expect(layer.digest).toBe(computeDigest(sig.payload));
    expect(layer.size).toBe(sig.payload.length);
    const signature = Buffer.from(layer.annotations[COSIGN_SIGNATURE_ANNOTATION], "base64");
    expect(verify("sha256", sig.payload, key.pem, signature)).toBe(true);
    expect(JSON.parse(sig.blobs[1]?.bytes.toString() ?? "").rootfs.diff_ids).toEqual([layer.digest]);
  });

  it("is what verify/ accepts for the signing key, and only for it", () => {
    const key = keyPair();
    const sig = createLegacySignature({
      manifestDigest: DIGEST,
      dockerReference: "r/demo",
      privateKey: key.privateKey,
    });
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
    const trusted = parseTrustedKey({ name: "demo", pem: key.pem });
    expect(judgeSignatures({ digest: DIGEST, keys: [trusted], evidence })).toMatchObject({
      status: "verified",
      key: "demo",
      keyFingerprint: trusted.fingerprint,
    });
    const other = parseTrustedKey({ name: "other", pem: keyPair().pem });
    expect(judgeSignatures({ digest: DIGEST, keys: [other], evidence })).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
    });
  });
});
