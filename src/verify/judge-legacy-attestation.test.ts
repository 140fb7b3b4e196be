import { beforeAll, describe, expect, it } from "vitest";
import { createPrivateSigstore, type PrivateSigstore } from "../../test/support/private-sigstore.ts";
import { dsseEnvelope, generateSigningKey, inTotoStatement } from "../local/index.ts";
import { computeDigest } from "../oci/index.ts";
import { keyAuthorities } from "./authorities.test-helpers.ts";
import { DSSE_ENVELOPE_MEDIA_TYPE } from "./cosign-format.ts";
import { judgeLegacyAttestation } from "./judge-legacy-attestation.ts";
import { legacyAttestationBundle } from "./legacy-bundle.ts";
import { compileSignerIdentity } from "./signer-identity.ts";
import { parseTrustRoot } from "./trust-root.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import type { LegacyLayerEvidence } from "./types.ts";
import type { KeylessAuthority } from "./verify-authorities.ts";

// One layer of a legacy `.att` manifest: the checks before any cryptography, the envelope's shape,
// a key-signed and a keyless (private Sigstore: certificate + dsse entry SET) attestation, and what
// the judgement carries (the statement, the signer, the log entry).

const digest = `sha256:${"a".repeat(64)}`;
const SLSA = "https://slsa.dev/provenance/v1";
const WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
const GITHUB = "https://token.actions.githubusercontent.com";
const key = generateSigningKey();
const KEYS = keyAuthorities([parseTrustedKey({ name: "release", pem: key.publicKeyPem })]);
const statement = inTotoStatement({ digest, predicateType: SLSA, predicate: { builder: "ci" } });

const layer = (
  payload: Uint8Array | undefined,
  annotations: Record<string, string> = {},
): LegacyLayerEvidence => ({
  mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
  digest: payload ? computeDigest(payload) : digest,
  annotations: { "dev.cosignproject.cosign/signature": "", predicateType: SLSA, ...annotations },
  payload,
});
const budget = () => ({ remaining: 16 });
const envelope = (value: unknown) => Buffer.from(JSON.stringify(value));

describe("judgeLegacyAttestation: before any cryptography", () => {
  it("another media type is not an attestation; an envelope not fetched is invalid", () => {
    expect(
      judgeLegacyAttestation(
        { ...layer(dsseEnvelope(statement, key)), mediaType: "x/y" },
        digest,
        KEYS,
        budget(),
      ),
    ).toEqual({
      result: "not-a-signature",
      detail: 'layer media type "x/y"',
    });
    expect(judgeLegacyAttestation(layer(undefined), digest, KEYS, budget())).toEqual({
      result: "invalid",
      detail: "envelope blob not fetched (missing or over the size cap)",
    });
  });

  it("refuses an envelope that is not one DSSE envelope with one signature, saying why", () => {
    const signed = JSON.parse(dsseEnvelope(statement, key).toString());
    const judge = (bytes: Uint8Array) => judgeLegacyAttestation(layer(bytes), digest, KEYS, budget());
    expect(judge(Buffer.from("{"))).toEqual({ result: "invalid", detail: "DSSE envelope is not JSON" });
    expect(judge(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).toEqual({
      result: "invalid",
      detail: "DSSE envelope is not JSON",
    });
    const lacks = { result: "invalid", detail: "DSSE envelope lacks payloadType, payload or signatures" };
    expect(judge(envelope({ ...signed, payloadType: 1 }))).toEqual(lacks);
    expect(judge(envelope({ ...signed, payload: undefined }))).toEqual(lacks);
    expect(judge(envelope({ ...signed, signatures: {} }))).toEqual(lacks);
    const one = { result: "invalid", detail: "DSSE envelope does not hold exactly one signature" };
    expect(judge(envelope({ ...signed, signatures: [] }))).toEqual(one);
    expect(judge(envelope({ ...signed, signatures: [signed.signatures[0], signed.signatures[0]] }))).toEqual(
      one,
    );
    expect(judge(envelope({ ...signed, signatures: [{ sig: "" }] }))).toEqual(one);
    expect(judge(envelope({ ...signed, signatures: [{ sig: 7 }] }))).toEqual(one);
    expect(judge(envelope({ ...signed, payloadType: "text/plain" }))).toEqual({
      result: "invalid",
      detail: 'DSSE payloadType "text/plain"',
    });
  });

  it("keeps the envelope's keyid, and an empty one when it is not a string", () => {
    const signed = JSON.parse(dsseEnvelope(statement, key).toString());
    const withId = legacyAttestationBundle(
      envelope({ ...signed, signatures: [{ ...signed.signatures[0], keyid: "k1" }] }),
      {},
    );
    const odd = legacyAttestationBundle(
      envelope({ ...signed, signatures: [{ ...signed.signatures[0], keyid: 5 }] }),
      {},
    );
    if (typeof withId === "string" || typeof odd === "string") throw new Error("not a bundle");
    expect(withId.content.$case === "dsseEnvelope" && withId.content.dsseEnvelope.signatures[0]?.keyid).toBe(
      "k1",
    );
    expect(odd.content.$case === "dsseEnvelope" && odd.content.dsseEnvelope.signatures[0]?.keyid).toBe("");
    expect(withId.verificationMaterial.content).toEqual({ $case: "publicKey", publicKey: { hint: "" } });
  });
});

describe("judgeLegacyAttestation: signed", () => {
  it("a key-signed attestation carries its statement and signer; a stranger's is untrusted", () => {
    const judged = judgeLegacyAttestation(layer(dsseEnvelope(statement, key)), digest, KEYS, budget());
    expect(judged).toMatchObject({ result: "verified", authority: { name: "release" } });
    expect(judged.attestation).toEqual({
      predicateType: SLSA,
      subjects: [{ name: "registry.test/repo", digest: { sha256: "a".repeat(64) } }],
      predicate: { builder: "ci" },
    });
    const stranger = judgeLegacyAttestation(
      layer(dsseEnvelope(statement, generateSigningKey())),
      digest,
      KEYS,
      budget(),
    );
    expect(stranger.result).toBe("untrusted");
    const other = judgeLegacyAttestation(
      layer(dsseEnvelope(statement, key)),
      `sha256:${"b".repeat(64)}`,
      KEYS,
      budget(),
    );
    expect(other).toMatchObject({
      result: "digest-mismatch",
      detail: "no statement subject names the digest",
    });
  });

  describe("keyless (a private Sigstore)", () => {
    let sigstore: PrivateSigstore;
    let ci: KeylessAuthority;
    beforeAll(async () => {
      sigstore = await createPrivateSigstore();
      ci = {
        kind: "keyless",
        name: "ci",
        identity: compileSignerIdentity({ name: "ci", issuer: GITHUB, subject: WORKFLOW }),
        root: parseTrustRoot("private", sigstore.trustedRootJson),
      };
    });

    it("verifies the certificate, the SET of its dsse entry and the identity, and draws on the keyless budget", async () => {
      const { envelope: bytes, annotations } = await sigstore.attestKeylessLegacy(statement, {
        subject: WORKFLOW,
        issuer: GITHUB,
      });
      const b = budget();
      const judged = judgeLegacyAttestation(layer(bytes, annotations), digest, [ci], b);
      expect(judged).toMatchObject({
        result: "verified",
        authority: { name: "ci" },
        certificate: { subjects: [WORKFLOW], issuer: GITHUB },
        logEntry: { logIndex: expect.any(String) },
        attestation: { predicateType: SLSA },
      });
      expect(b.remaining).toBe(15);
      expect(judgeLegacyAttestation(layer(bytes, annotations), digest, [ci], { remaining: 0 })).toEqual({
        result: "not-considered",
        detail: "over the cap of keyless verifications for one decision",
      });
    });

    it("another workflow's attestation names its signer and does not count", async () => {
      const other = "https://github.com/acme/app/.github/workflows/nightly.yml@refs/heads/main";
      const { envelope: bytes, annotations } = await sigstore.attestKeylessLegacy(statement, {
        subject: other,
        issuer: GITHUB,
      });
      const judged = judgeLegacyAttestation(layer(bytes, annotations), digest, [ci], budget());
      expect(judged).toMatchObject({ result: "untrusted", certificate: { subjects: [other] } });
      expect(judged.detail).toContain("matches no accepted identity (ci)");
    });

    it("a certificate annotation that is not one PEM certificate is invalid", async () => {
      const { envelope: bytes, annotations } = await sigstore.attestKeylessLegacy(statement, {
        subject: WORKFLOW,
        issuer: GITHUB,
      });
      const twice = `${annotations["dev.sigstore.cosign/certificate"]}${annotations["dev.sigstore.cosign/certificate"]}`;
      expect(
        judgeLegacyAttestation(
          layer(bytes, { ...annotations, "dev.sigstore.cosign/certificate": twice }),
          digest,
          [ci],
          budget(),
        ),
      ).toEqual({ result: "invalid", detail: "certificate annotation is not one PEM certificate" });
    });
  });
});
