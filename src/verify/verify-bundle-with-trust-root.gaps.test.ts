import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CONFORMANCE, PGI_ROOT, vectorBytes, vectorText } from "../../test/support/vectors.ts";
import { verifyBundleWithTrustRoot } from "./verify-bundle-with-trust-root.ts";

// Gaps left by mutation testing: message digests with other (or unknown) algorithms, the reasons
// given for refusals, and strict UTF-8 when the bundle comes as bytes.

const artifact = vectorBytes(`${CONFORMANCE}/a.txt`);
const bundle = vectorText(`${CONFORMANCE}/happy-path-v0.3/bundle.sigstore.json`);
const trustedRootJson = vectorText(PGI_ROOT);

/** The message-signature bundle with another message digest (algorithm and value). */
function withMessageDigest(algorithm: string, digest: Buffer): string {
  const parsed = JSON.parse(bundle);
  parsed.messageSignature.messageDigest = { algorithm, digest: digest.toString("base64") };
  return JSON.stringify(parsed);
}

describe("verifyBundleWithTrustRoot: message digests", () => {
  it("the vector verifies as is, from a string and from bytes", () => {
    expect(verifyBundleWithTrustRoot(bundle, { trustedRootJson, artifact })).toMatchObject({ ok: true });
    expect(verifyBundleWithTrustRoot(Buffer.from(bundle), { trustedRootJson, artifact })).toMatchObject({
      ok: true,
    });
  });

  it("an unknown digest algorithm is a failure, not a throw", () => {
    for (const algorithm of ["SHA3_256", "SHA3_384"]) {
      const json = withMessageDigest(algorithm, createHash("sha256").update(artifact).digest());
      expect(verifyBundleWithTrustRoot(json, { trustedRootJson, artifact })).toEqual({
        ok: false,
        code: "ARTIFACT_MISMATCH",
        reason: "the bundle's message digest is not the artifact's",
      });
    }
  });

  it.each([
    ["SHA2_384", "sha384"],
    ["SHA2_512", "sha512"],
    ["SHA2_256", "sha256"],
    ["HASH_ALGORITHM_UNSPECIFIED", "sha256"],
  ])("a %s message digest of the artifact is compared with %s", (algorithm, hash) => {
    const right = withMessageDigest(algorithm, createHash(hash).update(artifact).digest());
    expect(verifyBundleWithTrustRoot(right, { trustedRootJson, artifact })).not.toMatchObject({
      code: "ARTIFACT_MISMATCH",
    });
    const other = hash === "sha256" ? "sha512" : "sha256";
    const wrong = withMessageDigest(algorithm, createHash(other).update(artifact).digest());
    expect(verifyBundleWithTrustRoot(wrong, { trustedRootJson, artifact })).toMatchObject({
      ok: false,
      code: "ARTIFACT_MISMATCH",
    });
  });
});

describe("verifyBundleWithTrustRoot: reasons", () => {
  it("names what could not be read", () => {
    const junk = verifyBundleWithTrustRoot("not json", { trustedRootJson });
    expect(junk).toMatchObject({ ok: false, code: "BUNDLE_INVALID" });
    const parseError = (() => {
      try {
        JSON.parse("not json");
      } catch (err) {
        return (err as Error).message;
      }
    })();
    expect(junk.ok === false && junk.reason).toBe(`not a Sigstore bundle: ${parseError}`);
    const root = verifyBundleWithTrustRoot(bundle, { trustedRootJson: "nope", artifact });
    expect(root).toMatchObject({ ok: false, code: "TRUSTED_ROOT_INVALID" });
    expect(root.ok === false && root.reason).toMatch(/^unreadable trusted root: ./);
    expect(verifyBundleWithTrustRoot(bundle, { trustedRootJson })).toEqual({
      ok: false,
      code: "ARTIFACT_REQUIRED",
      reason: "a message-signature bundle signs artifact bytes; none given",
    });
  });

  it("refuses bundle bytes with an invalid UTF-8 byte inside a JSON string", () => {
    const withExtra = (value: Buffer) =>
      Buffer.concat([Buffer.from(`${bundle.trimEnd().slice(0, -1)}, "x": "`), value, Buffer.from('"}')]);
    expect(
      verifyBundleWithTrustRoot(withExtra(Buffer.from("y")), { trustedRootJson, artifact }),
    ).toMatchObject({
      ok: true,
    });
    const bad = verifyBundleWithTrustRoot(withExtra(Buffer.from([0xff])), { trustedRootJson, artifact });
    expect(bad).toMatchObject({ ok: false, code: "BUNDLE_INVALID" });
  });
});
