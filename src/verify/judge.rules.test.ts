import { generateKeyPairSync, type KeyObject, sign } from "node:crypto";
import { dsse } from "@sigstore/core";
import { describe, expect, it } from "vitest";
import { keyAuthorities } from "./authorities.test-helpers.ts";
import { judgeBundle } from "./judge-bundle.ts";
import { judgeLegacyLayer } from "./judge-legacy-layer.ts";
import { parseTrustedKey } from "./trusted-key.ts";

// Exact judgements of one legacy layer and one bundle, with a fresh key: the checks before the
// signature (empty or undecodable signatures), strict UTF-8, and the detail each refusal gives.

const SIMPLE = "application/vnd.dev.cosign.simplesigning.v1+json";
const SIG = "dev.cosignproject.cosign/signature";
const digest = `sha256:${"c".repeat(64)}` as const;
const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
const trusted = parseTrustedKey({
  name: "k",
  pem: publicKey.export({ type: "spki", format: "pem" }).toString(),
});
const AUTH = keyAuthorities([trusted]);
const signed = (bytes: Uint8Array, key: KeyObject = privateKey) =>
  sign("sha256", bytes, key).toString("base64");

const payloadOf = (critical: unknown) => Buffer.from(JSON.stringify({ critical, optional: null }));
const goodPayload = payloadOf({
  type: "cosign container image signature",
  image: { "docker-manifest-digest": digest },
  identity: { "docker-reference": "r/x" },
});
const layer = (payload: Uint8Array | undefined, annotations: Record<string, string> = {}) => ({
  mediaType: SIMPLE,
  digest,
  annotations,
  payload,
});

describe("judgeLegacyLayer: exact judgements", () => {
  it("verifies a signed simple-signing payload naming the digest", () => {
    expect(judgeLegacyLayer(layer(goodPayload, { [SIG]: signed(goodPayload) }), digest, AUTH)).toEqual({
      result: "verified",
      authority: AUTH[0],
    });
  });

  it("refuses before checking a signature: other media type, no, empty or undecodable signature", () => {
    expect(judgeLegacyLayer({ ...layer(goodPayload), mediaType: "x/y" }, digest, AUTH)).toEqual({
      result: "not-a-signature",
      detail: 'layer media type "x/y"',
    });
    const none = { result: "invalid", detail: `no ${SIG} annotation` };
    expect(judgeLegacyLayer(layer(goodPayload), digest, AUTH)).toEqual(none);
    expect(judgeLegacyLayer(layer(goodPayload, { [SIG]: "" }), digest, AUTH)).toEqual(none);
    const notBase64 = { result: "invalid", detail: "signature annotation is not base64" };
    expect(judgeLegacyLayer(layer(goodPayload, { [SIG]: "!!" }), digest, AUTH)).toEqual(notBase64);
    expect(judgeLegacyLayer(layer(goodPayload, { [SIG]: "\n" }), digest, AUTH)).toEqual(notBase64);
  });

  it("says why a signed payload is refused", () => {
    const judge = (payload: Uint8Array) =>
      judgeLegacyLayer(layer(payload, { [SIG]: signed(payload) }), digest, AUTH);
    expect(judge(Buffer.from("{"))).toMatchObject({ result: "invalid", detail: "payload is not JSON" });
    const badUtf8 = Buffer.concat([Buffer.from('{"x":"'), Buffer.from([0xff]), Buffer.from('"}')]);
    expect(judge(badUtf8)).toMatchObject({ result: "invalid", detail: "payload is not JSON" });
    expect(judge(payloadOf({ type: "other" }))).toMatchObject({ detail: 'payload critical.type is "other"' });
    expect(judge(payloadOf({ type: 1 }))).toMatchObject({ detail: "payload critical.type is missing" });
    expect(judge(payloadOf({ type: "cosign container image signature", image: {} }))).toMatchObject({
      result: "invalid",
      detail: "payload has no critical.image.docker-manifest-digest",
    });
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    expect(judgeLegacyLayer(layer(goodPayload, { [SIG]: signed(goodPayload, other) }), digest, AUTH)).toEqual(
      { result: "untrusted", detail: "no trusted key verifies the signature over the payload" },
    );
  });
});

describe("judgeBundle: exact judgements", () => {
  const statement = (predicateType: string, subjectDigest = digest) =>
    Buffer.from(
      JSON.stringify({
        _type: "https://in-toto.io/Statement/v1",
        predicateType,
        subject: [{ name: "x", digest: { sha256: subjectDigest.slice(7) } }],
      }),
    );
  const bundleOf = (
    payload: Buffer,
    options: { payloadType?: string; sig?: string; key?: KeyObject } = {},
  ) => {
    const payloadType = options.payloadType ?? "application/vnd.in-toto+json";
    const sig =
      options.sig ??
      sign("sha256", dsse.preAuthEncoding(payloadType, payload), options.key ?? privateKey).toString(
        "base64",
      );
    return Buffer.from(
      JSON.stringify({
        mediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
        verificationMaterial: { publicKey: { hint: "" }, tlogEntries: [] },
        dsseEnvelope: { payload: payload.toString("base64"), payloadType, signatures: [{ sig, keyid: "" }] },
      }),
    );
  };
  const judge = (bundle: Uint8Array, artifactType?: string) =>
    judgeBundle({ format: "sigstore-bundle", source: digest, artifactType, bundle }, digest, AUTH);
  const sign1 = "https://sigstore.dev/cosign/sign/v1";

  it("verifies a DSSE bundle signing the cosign sign predicate over the digest", () => {
    expect(judge(bundleOf(statement(sign1)))).toEqual({ result: "verified", authority: AUTH[0] });
  });

  it("refuses with the reason", () => {
    expect(judge(bundleOf(statement(sign1)), "application/x")).toEqual({
      result: "not-a-signature",
      detail: 'artifactType "application/x"',
    });
    expect(judge(Buffer.from("{}"))).toEqual({ result: "invalid", detail: "not a Sigstore bundle" });
    expect(judge(Buffer.from([0xff]))).toEqual({ result: "invalid", detail: "not a Sigstore bundle" });
    expect(judge(bundleOf(statement(sign1), { payloadType: "text/plain" }))).toEqual({
      result: "invalid",
      detail: 'DSSE payloadType "text/plain"',
    });
    // An empty DSSE signature is already refused by the bundle reader.
    expect(judge(bundleOf(statement(sign1), { sig: "" }))).toEqual({
      result: "invalid",
      detail: "not a Sigstore bundle",
    });
    const other = generateKeyPairSync("ec", { namedCurve: "P-256" }).privateKey;
    expect(judge(bundleOf(statement(sign1), { key: other }))).toEqual({
      result: "untrusted",
      detail: `${AUTH[0]?.name}: the signature does not verify with this key`,
    });
    expect(judge(bundleOf(statement(sign1, `sha256:${"d".repeat(64)}`)))).toEqual({
      result: "digest-mismatch",
      authority: AUTH[0],
      detail: "no statement subject names the digest",
    });
  });
});
