import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ATTESTATION_BUNDLE,
  CONFORMANCE,
  PGI_ROOT,
  vectorBytes,
  vectorText,
} from "../../test/support/vectors.ts";
import { verifyBundleWithTrustRoot } from "./verify-bundle-with-trust-root.ts";

// Exact outcomes of verifyBundleWithTrustRoot's own checks (bytes input, artifact binding, messages),
// on the real cosign attestation bundle and a sigstore-conformance message-signature bundle.

const pgiRoot = vectorText(PGI_ROOT);
const attestation = vectorText(ATTESTATION_BUNDLE);
const statement = JSON.parse(Buffer.from(JSON.parse(attestation).dsseEnvelope.payload, "base64").toString());
const subject = `sha256:${statement.subject[0].digest.sha256}`;
const signer = { subjectAlternativeName: "cody@soyland.com", issuer: "https://github.com/login/oauth" };
const reasonOf = (r: ReturnType<typeof verifyBundleWithTrustRoot>) =>
  r.ok ? "ok" : `${r.code}: ${r.reason}`;

function editEnvelope(edit: (envelope: { payloadType: string; payload: string }) => void): string {
  const parsed = JSON.parse(attestation);
  edit(parsed.dsseEnvelope);
  return JSON.stringify(parsed);
}

describe("verifyBundleWithTrustRoot: DSSE bundles", () => {
  it("reads the bundle from UTF-8 bytes as from a string", () => {
    const r = verifyBundleWithTrustRoot(new Uint8Array(Buffer.from(attestation)), {
      trustedRootJson: pgiRoot,
      artifactDigest: subject,
      identity: signer,
    });
    expect(r).toMatchObject({ ok: true, content: "dsse-envelope" });
  });

  it("verifies with no artifact to bind, and with an identity that names no issuer", () => {
    expect(reasonOf(verifyBundleWithTrustRoot(attestation, { trustedRootJson: pgiRoot }))).toBe("ok");
    expect(
      verifyBundleWithTrustRoot(attestation, {
        trustedRootJson: pgiRoot,
        identity: { subjectAlternativeName: signer.subjectAlternativeName },
      }),
    ).toMatchObject({
      ok: true,
      signer: { subjectAlternativeName: "cody@soyland.com", issuer: signer.issuer },
    });
  });

  it("binds artifact bytes by their sha256 against the statement's subjects", () => {
    const bytes = Buffer.from("not the subject");
    const digest = `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
    expect(
      reasonOf(verifyBundleWithTrustRoot(attestation, { trustedRootJson: pgiRoot, artifact: bytes })),
    ).toBe(`ARTIFACT_MISMATCH: no statement subject names ${digest}`);
  });

  it("refuses a payload that is not an in-toto statement before verifying anything", () => {
    const otherType = editEnvelope((e) => {
      e.payloadType = "application/x-other";
    });
    expect(
      reasonOf(verifyBundleWithTrustRoot(otherType, { trustedRootJson: pgiRoot, artifactDigest: subject })),
    ).toBe("ARTIFACT_MISMATCH: DSSE payloadType is application/x-other");
    const notStatement = editEnvelope((e) => {
      e.payload = Buffer.from("{}").toString("base64");
    });
    expect(
      reasonOf(
        verifyBundleWithTrustRoot(notStatement, { trustedRootJson: pgiRoot, artifactDigest: subject }),
      ),
    ).toBe("ARTIFACT_MISMATCH: in-toto _type missing");
  });

  it("says what is unreadable", () => {
    expect(reasonOf(verifyBundleWithTrustRoot("not json", { trustedRootJson: pgiRoot }))).toMatch(
      /^BUNDLE_INVALID: not a Sigstore bundle: \S/,
    );
    expect(
      reasonOf(verifyBundleWithTrustRoot(new Uint8Array([0x7b, 0xff, 0x7d]), { trustedRootJson: pgiRoot })),
    ).toMatch(/^BUNDLE_INVALID: not a Sigstore bundle: \S/);
    expect(reasonOf(verifyBundleWithTrustRoot(attestation, { trustedRootJson: "nope" }))).toMatch(
      /^TRUSTED_ROOT_INVALID: unreadable trusted root: \S/,
    );
  });
});

describe("verifyBundleWithTrustRoot: message-signature bundles", () => {
  const bundle = vectorText(`${CONFORMANCE}/happy-path-v0.3/bundle.sigstore.json`);
  const artifact = vectorBytes(`${CONFORMANCE}/a.txt`);

  it("needs the artifact bytes, and checks their digest first", () => {
    expect(reasonOf(verifyBundleWithTrustRoot(bundle, { trustedRootJson: pgiRoot }))).toBe(
      "ARTIFACT_REQUIRED: a message-signature bundle signs artifact bytes; none given",
    );
    expect(
      reasonOf(
        verifyBundleWithTrustRoot(bundle, { trustedRootJson: pgiRoot, artifact: Buffer.from("other") }),
      ),
    ).toBe("ARTIFACT_MISMATCH: the bundle's message digest is not the artifact's");
    expect(verifyBundleWithTrustRoot(bundle, { trustedRootJson: pgiRoot, artifact })).toMatchObject({
      ok: true,
      content: "message-signature",
    });
  });
});
