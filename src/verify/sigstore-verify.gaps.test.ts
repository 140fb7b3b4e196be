import { createHash, generateKeyPairSync } from "node:crypto";
import { bundleFromJSON } from "@sigstore/bundle";
import { toSignedEntity, Verifier } from "@sigstore/verify";
import { beforeAll, describe, expect, it } from "vitest";
import { createPrivateSigstore, type PrivateSigstore } from "../../test/support/private-sigstore.ts";
import { COSIGN_SIGNATURE_ANNOTATION, SIMPLESIGNING_MEDIA_TYPE } from "./cosign-format.ts";
import { judgeSignatures } from "./judge-signatures.ts";
import { legacyLayerBundle } from "./legacy-bundle.ts";
import { compileSignerIdentity } from "./signer-identity.ts";
import { parseTrustRoot, type TrustRoot } from "./trust-root.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import { type KeylessAuthority, verifyAgainstAuthorities } from "./verify-authorities.ts";

// What @sigstore/verify (4.x) accepts and pullgate must not, each shown against the library itself
// and then against pullgate's verifier. A pin here that starts failing means the library closed the
// gap: keep pullgate's own check (defence in depth) and update the pin.

const WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3";
const GITHUB = "https://token.actions.githubusercontent.com";
const payload = Buffer.from('{"critical":{"type":"cosign container image signature"}}');

let sigstore: PrivateSigstore;
let root: TrustRoot;
let workflow: KeylessAuthority;

beforeAll(async () => {
  sigstore = await createPrivateSigstore();
  root = parseTrustRoot("private", sigstore.trustedRootJson);
  workflow = {
    kind: "keyless",
    name: "release-workflow",
    identity: compileSignerIdentity({ name: "release-workflow", issuer: GITHUB, subject: WORKFLOW }),
    root,
  };
});

function bundleOf(annotations: Record<string, string>) {
  const bundle = legacyLayerBundle(
    annotations[COSIGN_SIGNATURE_ANNOTATION] ?? "",
    annotations,
    createHash("sha256").update(payload).digest(),
  );
  if (typeof bundle === "string") throw new Error(bundle);
  return bundle;
}

const KEYLESS_THRESHOLDS = { tlogThreshold: 1, timestampThreshold: 1, ctlogThreshold: 1 };

describe("@sigstore/verify gaps pullgate closes", () => {
  it("GAP: a Rekor entry logged for another key passes the library; pullgate wants the entry to name the signer", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const otherPem = generateKeyPairSync("ec", { namedCurve: "prime256v1" })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    const bundle = bundleOf(await sigstore.signWithKeyLogged(payload, privateKey, otherPem));
    const trust = { ...root.material, publicKey: () => ({ publicKey, validFor: () => true }) };
    expect(() =>
      new Verifier(trust, { tlogThreshold: 1, timestampThreshold: 1, ctlogThreshold: 0 }).verify(
        toSignedEntity(bundle, payload),
      ),
    ).not.toThrow();
    const key = parseTrustedKey({ name: "release", pem });
    expect(
      verifyAgainstAuthorities(bundle, payload, [
        { kind: "key", name: "release", key, transparencyLog: "required", root },
      ]),
    ).toMatchObject({ ok: false, detail: "release: the transparency-log entry names another key" });
  });

  it("GAP: a Rekor body stating another hash algorithm beside the digest passes the library; pullgate refuses it", async () => {
    const annotations = await sigstore.signKeyless(
      payload,
      { subject: WORKFLOW, issuer: GITHUB },
      {},
      { hashAlgorithm: "sha512" },
    );
    const bundle = bundleOf(annotations);
    expect(() =>
      new Verifier(root.material, KEYLESS_THRESHOLDS).verify(toSignedEntity(bundle, payload)),
    ).not.toThrow();
    expect(verifyAgainstAuthorities(bundle, payload, [workflow])).toMatchObject({
      ok: false,
      detail: expect.stringContaining('states hash algorithm "sha512" for a sha256 digest'),
    });
  });

  it("GAP: the library's subjectAlternativeName matches anywhere in the SAN; pullgate's patterns are anchored", async () => {
    const bundle = bundleOf(await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB }));
    const entity = toSignedEntity(bundle, payload);
    expect(() =>
      new Verifier(root.material, KEYLESS_THRESHOLDS).verify(entity, {
        subjectAlternativeName: "acme",
        extensions: { issuer: GITHUB },
      }),
    ).not.toThrow();
    const unanchored: KeylessAuthority = {
      ...workflow,
      identity: compileSignerIdentity({ name: "acme", issuer: GITHUB, subjectRegExp: "acme" }),
    };
    expect(verifyAgainstAuthorities(bundle, payload, [unanchored])).toMatchObject({
      ok: false,
      detail: expect.stringContaining("matches no accepted identity"),
    });
  });

  it("GAP: the library does not read the DSSE payload type (nor the statement); pullgate wants in-toto", async () => {
    const statement = Buffer.from(JSON.stringify({ _type: "https://in-toto.io/Statement/v1", subject: [] }));
    const json = await sigstore.signKeylessBundle(statement, SIMPLESIGNING_MEDIA_TYPE, {
      subject: WORKFLOW,
      issuer: GITHUB,
    });
    const bundle = bundleFromJSON(JSON.parse(json));
    expect(() =>
      new Verifier(root.material, KEYLESS_THRESHOLDS).verify(toSignedEntity(bundle)),
    ).not.toThrow();
    const verdict = judgeSignatures({
      digest: `sha256:${"a".repeat(64)}`,
      authorities: [workflow],
      evidence: [
        {
          format: "sigstore-bundle",
          source: `sha256:${"6".repeat(64)}`,
          artifactType: undefined,
          bundle: Buffer.from(json),
        },
      ],
    });
    expect(verdict).toMatchObject({ status: "denied", detail: expect.stringContaining("DSSE payloadType") });
  });
});
