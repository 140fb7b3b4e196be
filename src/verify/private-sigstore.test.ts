import { createHash, generateKeyPairSync } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { createPrivateSigstore, type PrivateSigstore } from "../../test/support/private-sigstore.ts";
import { PGI_ROOT, vectorText } from "../../test/support/vectors.ts";
import { SIMPLESIGNING_MEDIA_TYPE } from "./cosign-format.ts";
import { judgeSignatures } from "./judge-signatures.ts";
import { compileSignerIdentity } from "./signer-identity.ts";
import { parseTrustRoot, type TrustRoot } from "./trust-root.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import type { LegacySignatureEvidence } from "./types.ts";
import type { Authority, KeylessAuthority } from "./verify-authorities.ts";

// Keyless and logged key signatures made in the test by a private Sigstore (@sigstore/mock: a CA with
// a CT log, a Rekor log, and the trusted root naming them), judged like any cosign `.sig` layer.

const DIGEST = `sha256:${"a".repeat(64)}`;
const WORKFLOW = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.2.3";
const GITHUB = "https://token.actions.githubusercontent.com";

const payload = Buffer.from(
  JSON.stringify({
    critical: {
      identity: { "docker-reference": "registry.test/acme/app" },
      image: { "docker-manifest-digest": DIGEST },
      type: "cosign container image signature",
    },
    optional: null,
  }),
);

let sigstore: PrivateSigstore;
let root: TrustRoot;

beforeAll(async () => {
  sigstore = await createPrivateSigstore();
  root = parseTrustRoot("private", sigstore.trustedRootJson);
});

function evidence(annotations: Record<string, string>): LegacySignatureEvidence {
  return {
    format: "cosign-legacy",
    source: `sha256:${"5".repeat(64)}`,
    layers: [
      {
        mediaType: SIMPLESIGNING_MEDIA_TYPE,
        digest: `sha256:${createHash("sha256").update(payload).digest("hex")}`,
        annotations,
        payload,
      },
    ],
  };
}

function identity(
  spec: { subject?: string; subjectRegExp?: string; issuer?: string },
  trust = root,
): KeylessAuthority {
  return {
    kind: "keyless",
    name: "release-workflow",
    identity: compileSignerIdentity({ name: "release-workflow", issuer: GITHUB, ...spec }),
    root: trust,
  };
}

const judge = (annotations: Record<string, string>, authorities: Authority[]) =>
  judgeSignatures({ digest: DIGEST, authorities, evidence: [evidence(annotations)] });

describe("a private Sigstore made in the test", () => {
  it("a keyless signature by the release workflow is verified, with its log entry", async () => {
    const annotations = await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB });
    const verdict = judge(annotations, [
      identity({
        subjectRegExp: "https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*",
      }),
    ]);
    expect(verdict).toMatchObject({ status: "verified", key: "release-workflow" });
    expect(verdict.signatures[0]).toMatchObject({
      subject: WORKFLOW,
      issuer: GITHUB,
      logEntry: { logIndex: expect.any(String) },
    });
  });

  it("another workflow of the same repository is denied, and the message names it", async () => {
    const other = "https://github.com/acme/app/.github/workflows/nightly.yml@refs/heads/main";
    const annotations = await sigstore.signKeyless(payload, { subject: other, issuer: GITHUB });
    const verdict = judge(annotations, [
      identity({ subjectRegExp: "https://github\\.com/acme/app/\\.github/workflows/release\\.yml@.*" }),
    ]);
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.status === "denied" && verdict.detail).toContain(`subject ${other}, issuer ${GITHUB}`);
  });

  it("a certificate from this CA is worthless under the public-good root, and vice versa", async () => {
    const annotations = await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB });
    const stranger = parseTrustRoot("other-private", (await createPrivateSigstore()).trustedRootJson);
    const verdict = judge(annotations, [identity({ subject: WORKFLOW }, stranger)]);
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
  });

  it("a certificate used outside its validity (logged after it expired) is denied", async () => {
    const hourAgo = new Date(Date.now() - 3_600_000);
    const late = await createPrivateSigstore({ caClock: hourAgo, logClock: new Date() });
    const trust = parseTrustRoot("late", late.trustedRootJson);
    const annotations = await late.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB });
    const verdict = judge(annotations, [identity({ subject: WORKFLOW }, trust)]);
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.status === "denied" && verdict.detail).toContain("not valid at the logged time");
  });

  it("Fulcio extensions are matched exactly, by name", async () => {
    const annotations = await sigstore.signKeyless(payload, {
      subject: WORKFLOW,
      issuer: GITHUB,
      extensions: { "1.3.6.1.4.1.57264.1.12": "https://github.com/acme/app" },
    });
    const wanting = (value: string): KeylessAuthority => ({
      kind: "keyless",
      name: "repo",
      identity: compileSignerIdentity({
        name: "repo",
        issuer: GITHUB,
        subject: WORKFLOW,
        extensions: { sourceRepositoryURI: value },
      }),
      root,
    });
    expect(judge(annotations, [wanting("https://github.com/acme/app")]).status).toBe("verified");
    expect(judge(annotations, [wanting("https://github.com/acme/other")]).status).toBe("denied");
  });

  it("reads the issuer from Fulcio's DER extension (1.3.6.1.4.1.57264.1.8) before the legacy raw one", async () => {
    const annotations = await sigstore.signKeyless(payload, {
      subject: WORKFLOW,
      issuer: GITHUB,
      extensions: { "1.3.6.1.4.1.57264.1.8": "https://issuer.v2.test" },
    });
    expect(
      judge(annotations, [identity({ subject: WORKFLOW, issuer: "https://issuer.v2.test" })]).status,
    ).toBe("verified");
    expect(judge(annotations, [identity({ subject: WORKFLOW, issuer: GITHUB })]).status).toBe("denied");
  });

  it("a key signature logged in this Rekor passes under transparencyLog: required; unlogged, only under optional", async () => {
    const { publicKey, privateKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const key = parseTrustedKey({ name: "ci", pem });
    const required: Authority = { kind: "key", name: "ci", key, transparencyLog: "required", root };
    const optional: Authority = { ...required, transparencyLog: "optional" };
    const logged = await sigstore.signWithKeyLogged(payload, privateKey, pem);
    expect(judge(logged, [required]).status).toBe("verified");
    const { "dev.sigstore.cosign/bundle": _set, ...unlogged } = logged;
    expect(judge(unlogged, [required])).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(judge(unlogged, [optional]).status).toBe("verified");
    // Logged for another key: the entry does not name this one.
    const other = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const otherPem = other.publicKey.export({ type: "spki", format: "pem" }).toString();
    const misattributed = await sigstore.signWithKeyLogged(payload, privateKey, otherPem);
    expect(judge(misattributed, [required])).toMatchObject({ status: "denied" });
  });

  it.each([
    [
      "a leaf without the codeSigning extended key usage",
      { codeSigning: false },
      "no extended key usage codeSigning",
    ],
    [
      "a leaf without the digitalSignature key usage",
      { digitalSignature: false },
      "no key usage digitalSignature",
    ],
    ["a leaf issued by a trusted certificate that is no CA", { intermediateIsCa: false }, "does not chain"],
    [
      "a leaf below an intermediate whose path length forbids it",
      { pathLengthViolation: true },
      "does not chain",
    ],
    [
      "a leaf naming a trusted CA as its issuer but signed by another key",
      { forgedSignature: true },
      "does not chain",
    ],
  ])("denies %s", async (_, shape, why) => {
    const annotations = await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB }, shape);
    const verdict = judge(annotations, [identity({ subject: WORKFLOW })]);
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.status === "denied" && verdict.detail).toContain(why);
  });

  it("the shapes above are refused for their flaw alone: the same CA's well-formed leaf passes", async () => {
    const annotations = await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB }, {});
    expect(judge(annotations, [identity({ subject: WORKFLOW })]).status).toBe("verified");
  });
});

describe("the log entry of a keyless .sig signature, altered", () => {
  // Each entry is really logged (its SET verifies) and names this certificate, signature and digest
  // value; only the field named changes.
  it.each([
    [
      "another kind (rekord)",
      { kind: "rekord" },
      "the log entry is for another signature or payload (unsupported kind: rekord)",
    ],
    [
      // @sigstore/verify reads a 0.0.2 body as Rekor v2's and finds no spec it knows (its words).
      "another version (hashedrekord 0.0.2 in a Rekor v1 entry)",
      { apiVersion: "0.0.2" },
      "the log entry is for another signature or payload (missing dsse spec)",
    ],
    [
      "another hash algorithm beside the same digest value (sha512)",
      { hashAlgorithm: "sha512" },
      'states hash algorithm "sha512" for a sha256 digest',
    ],
  ])("denies %s", async (_, entry, why) => {
    const annotations = await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB }, {}, entry);
    const verdict = judge(annotations, [identity({ subject: WORKFLOW })]);
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.status === "denied" && verdict.detail).toContain(why);
  });

  it("denies an entry whose body states no hash algorithm", async () => {
    const annotations = await sigstore.signKeyless(
      payload,
      { subject: WORKFLOW, issuer: GITHUB },
      {},
      { hashAlgorithm: null },
    );
    expect(judge(annotations, [identity({ subject: WORKFLOW })])).toMatchObject({
      status: "denied",
      detail: `signed keyless by subject ${WORKFLOW}, issuer ${GITHUB}: release-workflow: the transparency-log entry states hash algorithm none for a sha256 digest`,
    });
  });

  it("denies an entry that names another certificate, once per trusted root however many identities accept it", async () => {
    const other = await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB });
    const annotations = await sigstore.signKeyless(
      payload,
      { subject: WORKFLOW, issuer: GITHUB },
      {},
      { signerPem: other["dev.sigstore.cosign/certificate"] },
    );
    const twice = [
      identity({ subject: WORKFLOW }),
      { ...identity({ subject: WORKFLOW }), name: "same-root" },
    ];
    expect(judge(annotations, twice)).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
      detail: `signed keyless by subject ${WORKFLOW}, issuer ${GITHUB}: release-workflow: the transparency-log entry names another certificate`,
    });
    // Under another root too: each root's reason, in order.
    const publicGood = parseTrustRoot("public-good", vectorText(PGI_ROOT));
    const verdict = judge(annotations, [
      identity({ subject: WORKFLOW }),
      identity({ subject: WORKFLOW }, publicGood),
    ]);
    expect(verdict.status === "denied" && verdict.detail).toMatch(
      /: release-workflow: the transparency-log entry names another certificate; release-workflow \(root public-good\): the certificate does not chain/,
    );
  });

  it("denies a key signature whose entry states another hash algorithm", async () => {
    const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const annotations = await sigstore.signWithKeyLogged(payload, privateKey, pem, {
      hashAlgorithm: "sha512",
    });
    const key = parseTrustedKey({ name: "release", pem });
    expect(
      judge(annotations, [{ kind: "key", name: "release", key, transparencyLog: "required", root }]),
    ).toMatchObject({
      status: "denied",
      detail: 'release: the transparency-log entry states hash algorithm "sha512" for a sha256 digest',
    });
  });

  it("control: the same entry unaltered passes", async () => {
    const annotations = await sigstore.signKeyless(payload, { subject: WORKFLOW, issuer: GITHUB }, {}, {});
    expect(judge(annotations, [identity({ subject: WORKFLOW })]).status).toBe("verified");
  });
});

describe("keyless Sigstore bundles (DSSE over an in-toto statement)", () => {
  const IN_TOTO = "application/vnd.in-toto+json";
  const statement = (subjects: Array<Record<string, string>>) =>
    Buffer.from(
      JSON.stringify({
        _type: "https://in-toto.io/Statement/v1",
        predicateType: "https://sigstore.dev/cosign/sign/v1",
        subject: subjects.map((digest, i) => ({ name: `registry.test/acme/app-${i}`, digest })),
        predicate: {},
      }),
    );
  const ours = { sha256: DIGEST.slice("sha256:".length) };
  const other = { sha256: "b".repeat(64) };
  const judgeBundleJson = (json: string) =>
    judgeSignatures({
      digest: DIGEST,
      authorities: [identity({ subject: WORKFLOW })],
      evidence: [
        {
          format: "sigstore-bundle",
          source: `sha256:${"6".repeat(64)}`,
          artifactType: "application/vnd.dev.sigstore.bundle.v0.3+json",
          bundle: Buffer.from(json),
        },
      ],
    });
  const signed = (body: Buffer, payloadType = IN_TOTO) =>
    sigstore.signKeylessBundle(body, payloadType, { subject: WORKFLOW, issuer: GITHUB });

  it("verifies for the workflow identity when the statement names the image", async () => {
    const verdict = judgeBundleJson(await signed(statement([ours])));
    expect(verdict).toMatchObject({ status: "verified", key: "release-workflow", format: "sigstore-bundle" });
  });

  it("a v0.3 bundle as cosign sign v3 writes it (leaf certificate, SET and inclusion proof) verifies too", async () => {
    const json = await sigstore.signKeylessBundle(
      statement([ours]),
      IN_TOTO,
      { subject: WORKFLOW, issuer: GITHUB },
      "v0.3",
    );
    expect(JSON.parse(json).verificationMaterial.tlogEntries[0].inclusionProof.checkpoint.envelope).toContain(
      "rekor.private.test",
    );
    expect(judgeBundleJson(json)).toMatchObject({ status: "verified", key: "release-workflow" });
  });

  it("denies a DSSE payload type other than in-toto, though the signature and log entry verify", async () => {
    const verdict = judgeBundleJson(
      await signed(statement([ours]), "application/vnd.dev.cosign.simplesigning.v1+json"),
    );
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.status === "denied" && verdict.detail).toContain("DSSE payloadType");
  });

  it("a statement with several subjects names the image only when one subject carries its digest", async () => {
    // in-toto and cosign verify-attestation: any subject may match; the others name other artifacts.
    expect(judgeBundleJson(await signed(statement([other, ours]))).status).toBe("verified");
    expect(judgeBundleJson(await signed(statement([other, { sha256: "c".repeat(64) }])))).toMatchObject({
      status: "denied",
      reason: "DIGEST_MISMATCH",
    });
    // The digest under another algorithm's name, or only as a prefix, is not the image's digest.
    expect(
      judgeBundleJson(
        await signed(statement([other, { sha512: ours.sha256 }, { sha256: ours.sha256.slice(0, 63) }])),
      ),
    ).toMatchObject({ status: "denied", reason: "DIGEST_MISMATCH" });
  });
});
