import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ATTESTATION_BUNDLE,
  CONFORMANCE,
  FIXTURES,
  PGI_ROOT,
  vectorBytes,
  vectorDir,
  vectorKey,
  vectorSubdirs,
  vectorText,
} from "../../test/support/vectors.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import { VerificationError } from "./types.ts";
import { type BundleVerification, verifyBundleWithTrustRoot } from "./verify-bundle-with-trust-root.ts";

/** Defaults of the sigstore-conformance bundle-verify suite (its README). */
const CONFORMANCE_IDENTITY = {
  subjectAlternativeName:
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main",
  issuer: "https://token.actions.githubusercontent.com",
};
const artifact = vectorBytes(`${CONFORMANCE}/a.txt`);
const pgiRoot = vectorText(PGI_ROOT);

function caseFiles(name: string): { bundle: string; trustedRootJson: string; keyPem: string | undefined } {
  const files = vectorDir(`${CONFORMANCE}/${name}`);
  return {
    bundle: vectorText(`${CONFORMANCE}/${name}/bundle.sigstore.json`),
    trustedRootJson: files.includes("trusted_root.json")
      ? vectorText(`${CONFORMANCE}/${name}/trusted_root.json`)
      : pgiRoot,
    keyPem: files.includes("key.pub") ? vectorText(`${CONFORMANCE}/${name}/key.pub`) : undefined,
  };
}

function verifyCase(name: string): BundleVerification {
  const { bundle, trustedRootJson, keyPem } = caseFiles(name);
  if (keyPem !== undefined) {
    const key = parseTrustedKey({ name: "key.pub", pem: keyPem });
    return verifyBundleWithTrustRoot(bundle, { trustedRootJson, publicKeys: [key], artifact });
  }
  return verifyBundleWithTrustRoot(bundle, { trustedRootJson, artifact, identity: CONFORMANCE_IDENTITY });
}

/** The bundle without its RFC 3161 timestamps (a test-only edit; see managed-key-happy-path). */
function withoutTsaTimestamps(bundle: string): string {
  const parsed = JSON.parse(bundle);
  delete parsed.verificationMaterial.timestampVerificationData;
  return JSON.stringify(parsed);
}

describe("verifyBundleWithTrustRoot: sigstore-conformance bundle-verify", () => {
  it("covers every case folder in the vectors", () => {
    const cases = vectorSubdirs(CONFORMANCE);
    expect(cases.sort()).toEqual(
      [
        "dsse-invalid-sig_fail",
        "dsse-mismatch-sig_fail",
        "happy-path-intoto-in-dsse-v3",
        "happy-path-v0.3",
        "managed-key-and-trusted-root",
        "managed-key-happy-path",
        "managed-key-no-key_fail",
        "managed-key-wrong-key_fail",
        "rekor2-dsse-happy-path",
        "set-invalid-signature_fail",
        "signature-mismatch_fail",
      ].sort(),
    );
  });

  it.each([
    ["happy-path-v0.3", "message-signature"],
    ["happy-path-intoto-in-dsse-v3", "dsse-envelope"],
    ["rekor2-dsse-happy-path", "dsse-envelope"], // Rekor v2: hashedrekord 0.0.2 over DSSE, checkpoint + TSA
  ])("%s: passes (keyless, conformance identity and issuer)", (name, content) => {
    expect(verifyCase(name)).toEqual({
      ok: true,
      content,
      signer: {
        kind: "certificate",
        subjectAlternativeName: CONFORMANCE_IDENTITY.subjectAlternativeName,
        issuer: CONFORMANCE_IDENTITY.issuer,
      },
    });
  });

  it("managed-key-and-trusted-root: passes with key.pub against its own (staging) trusted root", () => {
    const key = parseTrustedKey({
      name: "key.pub",
      pem: caseFiles("managed-key-and-trusted-root").keyPem as string,
    });
    expect(verifyCase("managed-key-and-trusted-root")).toEqual({
      ok: true,
      content: "message-signature",
      signer: { kind: "public-key", key: "key.pub", keyFingerprint: key.fingerprint },
    });
  });

  it("managed-key-happy-path: its TSA is not in our public-good root snapshot; everything else passes", () => {
    // Outside our control: the bundle (Dec 2025) carries an RFC 3161 timestamp from the public-good TSA
    // (CN=sigstore-tsa), but trusted_root_pgi.json (cosign's testdata snapshot, the only public-good root
    // in the vectors) has no timestampAuthorities, and @sigstore/verify requires every timestamp in a
    // bundle to verify. The conformance suite itself runs against the live TUF root, which lists the TSA.
    const { bundle, keyPem } = caseFiles("managed-key-happy-path");
    const key = parseTrustedKey({ name: "key.pub", pem: keyPem as string });
    expect(verifyCase("managed-key-happy-path")).toMatchObject({
      ok: false,
      code: "VERIFICATION_FAILED",
      sigstoreCode: "TIMESTAMP_ERROR",
    });
    // With the TSA timestamp removed (test-only edit) the rest verifies: signature over a.txt by key.pub,
    // key hint, Rekor v1 SET + inclusion proof + body binding, integrated time as the timestamp.
    expect(
      verifyBundleWithTrustRoot(withoutTsaTimestamps(bundle), {
        trustedRootJson: pgiRoot,
        publicKeys: [key],
        artifact,
      }),
    ).toEqual({
      ok: true,
      content: "message-signature",
      signer: { kind: "public-key", key: "key.pub", keyFingerprint: key.fingerprint },
    });
    // ... and the same edited bundle still fails with another key or another artifact
    const other = vectorKey(`${FIXTURES}/cosign.pub`);
    expect(
      verifyBundleWithTrustRoot(withoutTsaTimestamps(bundle), {
        trustedRootJson: pgiRoot,
        publicKeys: [other],
        artifact,
      }),
    ).toMatchObject({ ok: false, code: "VERIFICATION_FAILED" });
    expect(
      verifyBundleWithTrustRoot(withoutTsaTimestamps(bundle), {
        trustedRootJson: pgiRoot,
        publicKeys: [key],
        artifact: Buffer.from("not a.txt"),
      }),
    ).toMatchObject({ ok: false, code: "ARTIFACT_MISMATCH" });
  });

  it("managed-key-wrong-key_fail: the corrupted key.pub is refused at import (KEY_INVALID)", () => {
    const { keyPem } = caseFiles("managed-key-wrong-key_fail");
    expect(() => parseTrustedKey({ name: "key.pub", pem: keyPem as string })).toThrow(VerificationError);
    try {
      parseTrustedKey({ name: "key.pub", pem: keyPem as string });
    } catch (err) {
      expect((err as VerificationError).code).toBe("KEY_INVALID");
    }
  });

  it("managed-key-no-key_fail: a key-signed bundle with no key given fails with KEY_REQUIRED", () => {
    const { bundle, trustedRootJson } = caseFiles("managed-key-no-key_fail");
    expect(verifyBundleWithTrustRoot(bundle, { trustedRootJson, artifact })).toMatchObject({
      ok: false,
      code: "KEY_REQUIRED",
    });
    expect(verifyBundleWithTrustRoot(bundle, { trustedRootJson, artifact, publicKeys: [] })).toMatchObject({
      ok: false,
      code: "KEY_REQUIRED",
    });
  });

  it.each([
    ["dsse-invalid-sig_fail", "TLOG_BODY_ERROR"],
    ["dsse-mismatch-sig_fail", "TLOG_BODY_ERROR"],
    ["set-invalid-signature_fail", "TLOG_INCLUSION_PROMISE_ERROR"],
    ["signature-mismatch_fail", "TLOG_BODY_ERROR"],
  ])("%s: fails (%s)", (name, sigstoreCode) => {
    expect(verifyCase(name)).toMatchObject({ ok: false, code: "VERIFICATION_FAILED", sigstoreCode });
  });

  it("keyless happy paths fail for another identity or issuer, and for another artifact", () => {
    const { bundle, trustedRootJson } = caseFiles("happy-path-intoto-in-dsse-v3");
    expect(
      verifyBundleWithTrustRoot(bundle, {
        trustedRootJson,
        artifact,
        identity: { ...CONFORMANCE_IDENTITY, subjectAlternativeName: "https://github.com/someone/else" },
      }),
    ).toMatchObject({ ok: false, code: "IDENTITY_MISMATCH", sigstoreCode: "UNTRUSTED_SIGNER_ERROR" });
    expect(
      verifyBundleWithTrustRoot(bundle, {
        trustedRootJson,
        artifact,
        identity: { ...CONFORMANCE_IDENTITY, issuer: "https://accounts.google.com" },
      }),
    ).toMatchObject({ ok: false, code: "IDENTITY_MISMATCH" });
    expect(
      verifyBundleWithTrustRoot(bundle, {
        trustedRootJson,
        artifact: Buffer.from("other"),
        identity: CONFORMANCE_IDENTITY,
      }),
    ).toMatchObject({ ok: false, code: "ARTIFACT_MISMATCH" });
    const v03 = caseFiles("happy-path-v0.3");
    expect(
      verifyBundleWithTrustRoot(v03.bundle, {
        trustedRootJson: v03.trustedRootJson,
        artifact: Buffer.from("other"),
      }),
    ).toMatchObject({ ok: false, code: "ARTIFACT_MISMATCH" });
    expect(verifyBundleWithTrustRoot(v03.bundle, { trustedRootJson: v03.trustedRootJson })).toMatchObject({
      ok: false,
      code: "ARTIFACT_REQUIRED",
    });
  });

  it("a keyless bundle against a trusted root that does not hold its CA fails", () => {
    const { bundle } = caseFiles("happy-path-intoto-in-dsse-v3");
    const staging = caseFiles("managed-key-and-trusted-root").trustedRootJson;
    expect(verifyBundleWithTrustRoot(bundle, { trustedRootJson: staging, artifact })).toMatchObject({
      ok: false,
      code: "VERIFICATION_FAILED",
    });
  });

  it("junk bundle or trusted root", () => {
    const { bundle } = caseFiles("happy-path-v0.3");
    expect(verifyBundleWithTrustRoot("not json", { trustedRootJson: pgiRoot })).toMatchObject({
      code: "BUNDLE_INVALID",
    });
    expect(verifyBundleWithTrustRoot(new Uint8Array([0xff]), { trustedRootJson: pgiRoot })).toMatchObject({
      code: "BUNDLE_INVALID",
    });
    expect(verifyBundleWithTrustRoot("{}", { trustedRootJson: pgiRoot })).toMatchObject({
      code: "BUNDLE_INVALID",
    });
    expect(verifyBundleWithTrustRoot(bundle, { trustedRootJson: "nope", artifact })).toMatchObject({
      code: "TRUSTED_ROOT_INVALID",
    });
  });
});

describe("verifyBundleWithTrustRoot: the cosign OCI attestation bundle with trusted_root_pgi.json", () => {
  const bundle = vectorText(ATTESTATION_BUNDLE);
  const statement = JSON.parse(Buffer.from(JSON.parse(bundle).dsseEnvelope.payload, "base64").toString());
  const subject = `sha256:${statement.subject[0].digest.sha256}`;

  it("verifies (SET, inclusion proof, Fulcio chain, SCT) for its subject digest and signer", () => {
    expect(
      verifyBundleWithTrustRoot(bundle, {
        trustedRootJson: pgiRoot,
        artifactDigest: subject,
        identity: { subjectAlternativeName: "cody@soyland.com", issuer: "https://github.com/login/oauth" },
      }),
    ).toEqual({
      ok: true,
      content: "dsse-envelope",
      signer: {
        kind: "certificate",
        subjectAlternativeName: "cody@soyland.com",
        issuer: "https://github.com/login/oauth",
      },
    });
  });

  it("not for another digest", () => {
    const other = `sha256:${"1".repeat(64)}`;
    expect(
      verifyBundleWithTrustRoot(bundle, { trustedRootJson: pgiRoot, artifactDigest: other }),
    ).toMatchObject({
      ok: false,
      code: "ARTIFACT_MISMATCH",
    });
  });

  it("its certificate is the leaf the chain check also accepts (same vector, two verifiers)", () => {
    const der = Buffer.from(JSON.parse(bundle).verificationMaterial.certificate.rawBytes, "base64");
    expect(new X509Certificate(der).subjectAltName).toBe("email:cody@soyland.com");
  });
});
