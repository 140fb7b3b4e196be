import { generateKeyPairSync, sign } from "node:crypto";
import { dsse } from "@sigstore/core";
import { describe, expect, it } from "vitest";
import { judgeWithKeys, keyAuthorities } from "./authorities.test-helpers.ts";
import {
  COSIGN_SIGNATURE_ANNOTATION,
  MAX_SIGNATURE_CHECKS,
  SIMPLESIGNING_MEDIA_TYPE,
} from "./cosign-format.ts";
import { judgeBundle } from "./judge-bundle.ts";
import { judgeLegacyLayer } from "./judge-legacy-layer.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import type { BundleEvidence, DigestString, LegacyLayerEvidence, TrustedKey } from "./types.ts";

// Gaps left by mutation testing: the bundle side of the signature-check budget, the repository
// binding of both judges, and strict UTF-8 when reading a bundle.

const digest = `sha256:${"c".repeat(64)}` as DigestString;
const hex = (i: number) => i.toString(16).padStart(64, "0");
const newKey = (name: string): TrustedKey => {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return parseTrustedKey({ name, pem: publicKey.export({ type: "spki", format: "pem" }).toString() });
};
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const trusted = parseTrustedKey({
  name: "k",
  pem: publicKey.export({ type: "spki", format: "pem" }).toString(),
});
const AUTH = keyAuthorities([trusted]);

describe("judgeSignatures: the signature-check budget counts bundles", () => {
  const keys = Array.from({ length: 8 }, (_, i) => newKey(`k${i}`));
  const perCandidate = keys.length;
  // A layer without a fetched payload and a bundle that is not JSON are cheap to judge, but each
  // still costs `perCandidate` checks of the budget.
  const layer = (i: number): LegacyLayerEvidence => ({
    mediaType: SIMPLESIGNING_MEDIA_TYPE,
    digest: `sha256:${hex(i)}` as DigestString,
    annotations: { [COSIGN_SIGNATURE_ANNOTATION]: "AAAA" },
    payload: undefined,
  });
  const bundle = (i: number): BundleEvidence => ({
    format: "sigstore-bundle",
    source: `sha256:${hex(100_000 + i)}` as DigestString,
    artifactType: undefined,
    bundle: Buffer.from("x"),
  });
  const layersFilling = (MAX_SIGNATURE_CHECKS - 8 * perCandidate) / perCandidate; // 120

  it(`judges bundles up to exactly ${MAX_SIGNATURE_CHECKS} checks, then skips them`, () => {
    const evidence = [
      {
        format: "cosign-legacy" as const,
        source: `sha256:${hex(1)}` as DigestString,
        layers: Array.from({ length: layersFilling }, (_, i) => layer(i)),
      },
      ...Array.from({ length: 9 }, (_, i) => bundle(i)),
    ];
    const verdict = judgeWithKeys({ digest, keys, evidence });
    const bundleReports = verdict.signatures.filter((r) => r.format === "sigstore-bundle");
    expect(bundleReports.filter((r) => r.result === "invalid")).toHaveLength(8);
    expect(bundleReports.at(-1)).toMatchObject({
      result: "not-considered",
      source: bundle(8).source,
      detail: expect.stringMatching(/^1 bundle/),
    });
    expect(bundleReports).toHaveLength(9);
  });

  it("counts the checks of judged bundles against later legacy layers", () => {
    const evidence = [
      ...Array.from({ length: 8 }, (_, i) => bundle(i)),
      {
        format: "cosign-legacy" as const,
        source: `sha256:${hex(1)}` as DigestString,
        layers: Array.from({ length: layersFilling + 1 }, (_, i) => layer(i)),
      },
    ];
    const verdict = judgeWithKeys({ digest, keys, evidence });
    const legacyReports = verdict.signatures.filter((r) => r.format === "cosign-legacy");
    expect(legacyReports.filter((r) => r.result === "invalid")).toHaveLength(layersFilling);
    expect(legacyReports.at(-1)).toMatchObject({
      result: "not-considered",
      detail: expect.stringMatching(/^1 layer\(s\)/),
    });
  });
});

describe("judgeLegacyLayer: the repository binding", () => {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        type: "cosign container image signature",
        image: { "docker-manifest-digest": digest },
        identity: { "docker-reference": "r.example/proj/app:v1" },
      },
      optional: null,
    }),
  );
  const layer: LegacyLayerEvidence = {
    mediaType: SIMPLESIGNING_MEDIA_TYPE,
    digest,
    annotations: { [COSIGN_SIGNATURE_ANNOTATION]: sign("sha256", payload, privateKey).toString("base64") },
    payload,
  };

  it("verifies for the signed repository and refuses another one", () => {
    expect(judgeLegacyLayer(layer, digest, AUTH, { registry: "r.example", name: "proj/app" })).toEqual({
      result: "verified",
      authority: AUTH[0],
    });
    expect(judgeLegacyLayer(layer, digest, AUTH, { registry: "r.example", name: "proj/evil" })).toEqual({
      result: "repository-mismatch",
      authority: AUTH[0],
      detail: 'payload is for "r.example/proj/app:v1", not r.example/proj/evil',
    });
  });
});

describe("judgeBundle: the repository binding and strict UTF-8", () => {
  const statement = (name: string) =>
    Buffer.from(
      JSON.stringify({
        _type: "https://in-toto.io/Statement/v1",
        predicateType: "https://sigstore.dev/cosign/sign/v1",
        subject: [{ name, digest: { sha256: digest.slice(7) } }],
      }),
    );
  const bundleJson = (payload: Buffer, hint: string) => {
    const payloadType = "application/vnd.in-toto+json";
    const sig = sign("sha256", dsse.preAuthEncoding(payloadType, payload), privateKey).toString("base64");
    return JSON.stringify({
      mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
      verificationMaterial: { publicKey: { hint }, tlogEntries: [] },
      dsseEnvelope: { payload: payload.toString("base64"), payloadType, signatures: [{ sig, keyid: "" }] },
    });
  };
  const judge = (bytes: Uint8Array, repository?: { registry: string; name: string }) =>
    judgeBundle(
      { format: "sigstore-bundle", source: digest, artifactType: undefined, bundle: bytes },
      digest,
      AUTH,
      repository,
    );

  it("verifies for the signed repository and refuses another one", () => {
    const bytes = Buffer.from(bundleJson(statement("r.example/proj/app"), ""));
    expect(judge(bytes, { registry: "r.example", name: "proj/app" })).toEqual({
      result: "verified",
      authority: AUTH[0],
    });
    expect(judge(bytes, { registry: "r.example", name: "proj/evil" })).toEqual({
      result: "repository-mismatch",
      authority: AUTH[0],
      // The quoted names themselves are not pinned: `names.map(quote)` in signed-repository.ts passes
      // the index as quote's `max` (reported, not fixed here).
      detail: expect.stringMatching(/^statement subjects name .*, not r\.example\/proj\/evil$/),
    });
  });

  it("refuses a bundle with an invalid UTF-8 byte inside a JSON string", () => {
    const [before, after] = bundleJson(statement("x"), "HINT").split("HINT") as [string, string];
    const good = Buffer.from(bundleJson(statement("x"), "h"));
    expect(judge(good)).toEqual({ result: "verified", authority: AUTH[0] });
    const bad = Buffer.concat([Buffer.from(before), Buffer.from([0xff]), Buffer.from(after)]);
    expect(judge(bad)).toEqual({ result: "invalid", detail: "not a Sigstore bundle" });
  });
});
