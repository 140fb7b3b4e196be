import { readFileSync } from "node:fs";
import { bundleFromJSON } from "@sigstore/bundle";
import { describe, expect, it } from "vitest";
import {
  CONFORMANCE,
  vectorBytes,
  vectorDir,
  vectorSubdirs,
  vectorText,
} from "../../test/support/vectors.ts";
import { compileSignerIdentity } from "./signer-identity.ts";
import { parseTrustRoot } from "./trust-root.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import { type Authority, verifyAgainstAuthorities } from "./verify-authorities.ts";

// Every sigstore-conformance bundle-verify case with the outcome its name states (`_fail`: refused),
// through the verifier the pull path uses: key.pub when the case has one (its log entry required),
// else the conformance beacon's keyless identity; the case's trusted_root.json, else the built-in root.

const BEACON =
  "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
const GITHUB = "https://token.actions.githubusercontent.com";
const builtIn = parseTrustRoot(
  "public-good",
  readFileSync(new URL("../../trust/public-good.trusted_root.json", import.meta.url)),
);
const artifact = vectorBytes(`${CONFORMANCE}/a.txt`);

function authoritiesFor(name: string): Authority[] {
  const files = vectorDir(`${CONFORMANCE}/${name}`);
  const root = files.includes("trusted_root.json")
    ? parseTrustRoot(name, vectorText(`${CONFORMANCE}/${name}/trusted_root.json`))
    : builtIn;
  if (files.includes("key.pub")) {
    const key = parseTrustedKey({ name: "key.pub", pem: vectorText(`${CONFORMANCE}/${name}/key.pub`) });
    return [{ kind: "key", name: "key.pub", key, transparencyLog: "required", root }];
  }
  const identity = compileSignerIdentity({ name: "beacon", issuer: GITHUB, subject: BEACON });
  return [{ kind: "keyless", name: "beacon", identity, root }];
}

function verifyCase(name: string) {
  const bundle = bundleFromJSON(JSON.parse(vectorText(`${CONFORMANCE}/${name}/bundle.sigstore.json`)));
  const signsArtifact = bundle.content.$case === "messageSignature";
  return verifyAgainstAuthorities(bundle, signsArtifact ? artifact : undefined, authoritiesFor(name));
}

describe("sigstore-conformance bundle-verify, through verifyAgainstAuthorities", () => {
  const cases = vectorSubdirs(CONFORMANCE).sort();

  it("has the eleven cases the vectors README lists", () => {
    expect(cases).toEqual([
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
    ]);
  });

  it.each(cases.filter((c) => !c.endsWith("_fail")))("%s: verified", (name) => {
    expect(verifyCase(name)).toMatchObject({ ok: true });
  });

  it.each([
    [
      "dsse-invalid-sig_fail",
      "the log entry is for another signature or payload (tlog entry signature mismatch)",
    ],
    [
      "dsse-mismatch-sig_fail",
      "the log entry is for another signature or payload (tlog entry signature mismatch)",
    ],
    [
      "set-invalid-signature_fail",
      "the log entry's signed promise (SET) does not verify with any log of the trusted root",
    ],
    ["signature-mismatch_fail", "the log entry is for another signature or payload (signature mismatch)"],
  ])("%s: refused (%s)", (name, why) => {
    expect(verifyCase(name)).toMatchObject({ ok: false, detail: expect.stringContaining(why) });
  });

  it("managed-key-wrong-key_fail: its corrupted key.pub is refused when the configuration is read", () => {
    expect(() => authoritiesFor("managed-key-wrong-key_fail")).toThrow(
      expect.objectContaining({ code: "KEY_INVALID" }),
    );
  });

  it("managed-key-no-key_fail: a key-signed bundle is not accepted by keyless identities", () => {
    expect(vectorDir(`${CONFORMANCE}/managed-key-no-key_fail`)).not.toContain("key.pub");
    expect(verifyCase("managed-key-no-key_fail")).toMatchObject({
      ok: false,
      detail: "signed with a key, and the project trusts no key",
    });
  });

  it("the happy paths are refused for another identity, another artifact, or a root without their CA", () => {
    const other = compileSignerIdentity({ name: "other", issuer: GITHUB, subject: `${BEACON}x` });
    for (const name of ["happy-path-v0.3", "happy-path-intoto-in-dsse-v3"]) {
      const bundle = bundleFromJSON(JSON.parse(vectorText(`${CONFORMANCE}/${name}/bundle.sigstore.json`)));
      const data = bundle.content.$case === "messageSignature" ? artifact : undefined;
      expect(
        verifyAgainstAuthorities(bundle, data, [
          { kind: "keyless", name: "other", identity: other, root: builtIn },
        ]).ok,
      ).toBe(false);
    }
    const v03 = bundleFromJSON(JSON.parse(vectorText(`${CONFORMANCE}/happy-path-v0.3/bundle.sigstore.json`)));
    expect(
      verifyAgainstAuthorities(v03, Buffer.from("not a.txt"), authoritiesFor("happy-path-v0.3")).ok,
    ).toBe(false);
    const noCa = parseTrustRoot(
      "no-ca",
      JSON.stringify({ ...JSON.parse(builtIn.json), certificateAuthorities: [] }),
    );
    const [beacon] = authoritiesFor("happy-path-v0.3") as [Authority];
    expect(verifyAgainstAuthorities(v03, artifact, [{ ...beacon, root: noCa }])).toMatchObject({
      ok: false,
      detail: expect.stringContaining("does not chain"),
    });
  });
});
