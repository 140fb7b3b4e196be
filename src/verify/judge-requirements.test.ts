import { describe, expect, it } from "vitest";
import { ATTESTATION_BUNDLE, fixtureCase, vectorBytes, vectorKey } from "../../test/support/vectors.ts";
import {
  bundleEvidence,
  dsseEnvelope,
  generateSigningKey,
  inTotoStatement,
  legacySignatureEvidence,
  makeBundle,
  type SigningKey,
  simpleSigningPayload,
} from "../local/index.ts";
import { computeDigest } from "../oci/index.ts";
import { keyAuthorities, TEST_ROOT } from "./authorities.test-helpers.ts";
import { DSSE_ENVELOPE_MEDIA_TYPE } from "./cosign-format.ts";
import { judgeSignatures } from "./judge-signatures.ts";
import {
  compileRequirements,
  mayMeetRequirements,
  type Requirements,
  type RequirementsSpec,
} from "./policy-requirements.ts";
import { compileSignerIdentity } from "./signer-identity.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import type { SignatureEvidence } from "./types.ts";
import type { KeyAuthority, KeylessAuthority } from "./verify-authorities.ts";

// The policy beyond "one trusted signer": threshold and required signers (counted by name), signed
// annotations, key validity windows, and required attestations with their signers and conditions.
// Fresh keys sign in cosign's formats (src/local), and a real cosign attestation (keyless) is the
// independent check.

const digest = `sha256:${"d".repeat(64)}`;
const SLSA = "https://slsa.dev/provenance/v1";
const VULN = "https://cosign.sigstore.dev/attestation/vuln/v1";

const signing: Record<string, SigningKey> = {
  release: generateSigningKey(),
  qa: generateSigningKey(),
  security: generateSigningKey(),
};
const authority = (name: string, extra: Partial<KeyAuthority> = {}): KeyAuthority => ({
  ...(keyAuthorities([
    parseTrustedKey({ name, pem: (signing[name] as SigningKey).publicKeyPem }),
  ])[0] as KeyAuthority),
  ...extra,
});
const AUTHORITIES = [authority("release"), authority("qa"), authority("security")];

function requirements(spec: Partial<RequirementsSpec>): Requirements {
  const r = compileRequirements({
    threshold: 1,
    requiredSigners: [],
    annotations: {},
    attestations: [],
    ...spec,
  });
  if ("problems" in r) throw new Error(r.problems.join("; "));
  return r;
}

/** A `.sig` with one layer per signer, each payload carrying `annotations` (cosign sign -a). */
function sigBy(signers: readonly string[], annotations?: Record<string, string>): SignatureEvidence {
  return legacySignatureEvidence(
    computeDigest(Buffer.from(signers.join())),
    simpleSigningPayload(digest, "registry.test/repo", annotations),
    signers.map((name) => signing[name] as SigningKey),
  );
}

/** An attestation as a bundle signed by `signer`. */
function attestation(
  signer: string,
  predicateType: string,
  predicate: unknown,
  about = digest,
): SignatureEvidence {
  return bundleEvidence(
    makeBundle({ digest: about, key: signing[signer] as SigningKey, predicateType, predicate }),
  );
}

/** An attestation in the legacy `.att` layout signed by `signer`. */
function legacyAttestation(signer: string, predicateType: string, predicate: unknown): SignatureEvidence {
  const envelope = dsseEnvelope(
    inTotoStatement({ digest, predicateType, predicate }),
    signing[signer] as SigningKey,
  );
  return {
    format: "cosign-legacy-attestation",
    source: computeDigest(envelope),
    layers: [
      {
        mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
        digest: computeDigest(envelope),
        annotations: { "dev.cosignproject.cosign/signature": "", predicateType },
        payload: envelope,
      },
    ],
  };
}

const judge = (evidence: SignatureEvidence[], spec: Partial<RequirementsSpec> = {}, now?: number) =>
  judgeSignatures({
    digest,
    authorities: AUTHORITIES,
    evidence,
    requirements: requirements(spec),
    ...(now ? { now } : {}),
  });

describe("threshold and required signers", () => {
  it("counts distinct signers by name: two keys meet threshold 2, one key twice does not", () => {
    expect(judge([sigBy(["release", "qa"])], { threshold: 2 })).toMatchObject({
      status: "verified",
      key: "release",
      signers: ["release", "qa"],
    });
    const twice = judge([sigBy(["release"]), sigBy(["release"])], { threshold: 2 });
    expect(twice).toMatchObject({
      status: "denied",
      reason: "NOT_ENOUGH_SIGNERS",
      detail: "signed by release: 1 of the 2 distinct signers the project requires",
    });
  });

  it("requires each required signer: qa + security without release is not enough", () => {
    expect(judge([sigBy(["qa", "security"])], { threshold: 2, requiredSigners: ["release"] })).toMatchObject({
      status: "denied",
      reason: "NOT_ENOUGH_SIGNERS",
      detail: "signed by qa, security: missing required signer(s): release",
    });
    expect(judge([sigBy(["qa", "release"])], { requiredSigners: ["release"] })).toMatchObject({
      status: "verified",
    });
  });

  it("nobody counted: the reason stays what the signatures say (NO_SIGNATURE, UNTRUSTED_SIGNATURE)", () => {
    expect(judge([], { threshold: 2 })).toMatchObject({ reason: "NO_SIGNATURE" });
    const stranger = generateSigningKey();
    const untrusted = legacySignatureEvidence(digest, simpleSigningPayload(digest), [stranger]);
    expect(judge([untrusted], { threshold: 2 })).toMatchObject({ reason: "UNTRUSTED_SIGNATURE" });
  });
});

describe("signed annotations (cosign sign -a, verify -a)", () => {
  it("legacy payloads: each required annotation in `optional` with exactly that string value", () => {
    const spec = { annotations: { project: "prod" } };
    expect(judge([sigBy(["release"], { project: "prod", extra: "x" })], spec)).toMatchObject({
      status: "verified",
    });
    expect(judge([sigBy(["release"])], spec)).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
      detail: 'annotation "project" is missing, the project requires "prod"',
    });
    const staging = judge([sigBy(["release"], { project: "staging" })], spec);
    expect(staging.signatures[0]).toMatchObject({ result: "annotation-mismatch", key: "release" });
    expect(staging).toMatchObject({
      detail: 'annotation "project" is "staging", the project requires "prod"',
    });
  });

  it("a non-string value does not match its string form", () => {
    const payload = Buffer.from(
      JSON.stringify({
        critical: {
          identity: { "docker-reference": "r" },
          image: { "docker-manifest-digest": digest },
          type: "cosign container image signature",
        },
        optional: { n: 1 },
      }),
    );
    const evidence = legacySignatureEvidence(digest, payload, [signing.release as SigningKey]);
    expect(judge([evidence], { annotations: { n: "1" } })).toMatchObject({
      detail: 'annotation "n" is not a string, the project requires "1"',
    });
  });

  it("bundle signatures: the annotations of the statement subject that names the digest", () => {
    const ok = makeBundle({ digest, key: signing.release as SigningKey, annotations: { project: "prod" } });
    const none = makeBundle({ digest, key: signing.qa as SigningKey });
    const verdict = judge([bundleEvidence(none), bundleEvidence(ok)], { annotations: { project: "prod" } });
    expect(verdict).toMatchObject({ status: "verified", key: "release" });
    expect(verdict.signatures.map((s) => s.result)).toEqual(["annotation-mismatch", "verified"]);
  });

  it("one signer's mismatch does not count towards the threshold", () => {
    const evidence = [sigBy(["release"], { project: "prod" }), sigBy(["qa"], { project: "dev" })];
    expect(judge(evidence, { threshold: 2, annotations: { project: "prod" } })).toMatchObject({
      reason: "NOT_ENOUGH_SIGNERS",
    });
  });
});

describe("key validity windows", () => {
  const YEAR = 365 * 24 * 3600 * 1000;
  const now = Date.parse("2026-06-01T00:00:00Z");

  it("without a verified time: judged against now; without now it does not count", () => {
    const inside = [authority("release", { notBefore: now - YEAR, notAfter: now + YEAR })];
    const expired = [authority("release", { notAfter: now - YEAR })];
    const future = [authority("release", { notBefore: now + YEAR })];
    const judgeWith = (authorities: KeyAuthority[], at?: number) =>
      judgeSignatures({ digest, authorities, evidence: [sigBy(["release"])], ...(at ? { now: at } : {}) });
    expect(judgeWith(inside, now)).toMatchObject({ status: "verified" });
    expect(judgeWith(expired, now)).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
      detail:
        "signed by key release, but no verified signing time, and now is 2026-06-01T00:00:00Z, after the key's notAfter 2025-06-01T00:00:00Z",
    });
    expect(judgeWith(future, now).status).toBe("denied");
    expect(judgeWith(inside)).toMatchObject({
      status: "denied",
      detail:
        "signed by key release, but no verified signing time to check the key's validity window against",
    });
  });

  it("with a verified log entry: judged at its integrated time, not now (a real SET, dir-img-cosign-key-rekor-valid)", () => {
    const fixture = fixtureCase("dir-img-cosign-key-rekor-valid");
    const key = vectorKey("containers-image/signature/fixtures/cosign2.pub", "cosign2");
    const [base] = keyAuthorities([key], "required");
    const judgeWith = (window: Partial<KeyAuthority>) =>
      judgeSignatures({
        digest: fixture.digest ?? "",
        authorities: [{ ...(base as KeyAuthority), ...window }],
        evidence: [fixture.evidence],
        now: Date.parse("2100-01-01T00:00:00Z"),
      });
    const logged = judgeWith({});
    expect(logged.status).toBe("verified");
    const at = Date.parse(logged.signatures[0]?.logEntry?.integratedTime ?? "");
    expect(judgeWith({ notBefore: at - 1000, notAfter: at + 1000 }).status).toBe("verified");
    const before = judgeWith({ notAfter: at - 1000 });
    expect(before).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(before.status === "denied" && before.detail).toMatch(
      /cosign2: signed at .*, after the key's notAfter/,
    );
  });
});

describe("required attestations", () => {
  const provenance = (repository: string) => ({
    buildDefinition: { externalParameters: { workflow: { repository } } },
  });
  const spec: Partial<RequirementsSpec> = {
    attestations: [
      {
        name: "provenance",
        predicateType: SLSA,
        signers: ["release"],
        condition:
          'predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"',
      },
      {
        name: "scan",
        predicateType: VULN,
        signers: ["security"],
        condition: "predicate.summary.critical == 0",
      },
    ],
  };
  const good = () => [
    sigBy(["release"]),
    attestation("release", SLSA, provenance("https://github.com/acme/app")),
    legacyAttestation("security", VULN, { summary: { critical: 0 } }),
  ];

  it("met by verified attestations of each type, by allowed signers, whose conditions are true", () => {
    const verdict = judge(good(), spec);
    expect(verdict).toMatchObject({ status: "verified", key: "release" });
    const atts = verdict.signatures.filter((s) => s.kind === "attestation");
    expect(atts).toMatchObject([
      {
        format: "sigstore-bundle",
        key: "release",
        predicateType: SLSA,
        requirements: [{ attestation: "provenance", result: "met" }],
      },
      {
        format: "cosign-legacy-attestation",
        key: "security",
        predicateType: VULN,
        requirements: [{ attestation: "scan", result: "met" }],
      },
    ]);
  });

  it("ATTESTATION_REJECTED: found, verified, condition false (the detail names the attestation and the condition)", () => {
    const evidence = [
      ...good().slice(0, 2),
      legacyAttestation("security", VULN, { summary: { critical: 3 } }),
    ];
    const verdict = judge(evidence, spec);
    expect(verdict).toMatchObject({
      status: "denied",
      reason: "ATTESTATION_REJECTED",
      detail: `attestation scan (${VULN}) signed by security: condition "predicate.summary.critical == 0" is false`,
    });
  });

  it("ATTESTATION_REJECTED: a condition that fails on the predicate (no such key) says why", () => {
    const evidence = [...good().slice(0, 2), legacyAttestation("security", VULN, { other: 1 })];
    const verdict = judge(evidence, spec);
    expect(verdict).toMatchObject({ status: "denied", reason: "ATTESTATION_REJECTED" });
    expect(verdict.status === "denied" && verdict.detail).toContain("failed:");
  });

  it("MISSING_ATTESTATION: none of the type, or only by a signer not allowed for it", () => {
    expect(judge(good().slice(0, 2), spec)).toMatchObject({
      reason: "MISSING_ATTESTATION",
      detail: `attestation scan: no verified ${VULN} attestation signed by security`,
    });
    const byQa = [...good().slice(0, 2), legacyAttestation("qa", VULN, { summary: { critical: 0 } })];
    const verdict = judge(byQa, spec);
    expect(verdict).toMatchObject({
      reason: "MISSING_ATTESTATION",
      detail: `attestation scan: no verified ${VULN} attestation signed by security; found one signed by qa, not allowed for it`,
    });
    expect(verdict.signatures.find((s) => s.key === "qa")?.requirements).toEqual([
      { attestation: "scan", result: "signer-not-allowed", detail: "signed by qa; allowed: security" },
    ]);
  });

  it("an attestation about another digest does not count; nor does an unsigned statement or a stranger's", () => {
    const other = `sha256:${"e".repeat(64)}`;
    const evidence = [
      good()[0] as SignatureEvidence,
      attestation("release", SLSA, provenance("https://github.com/acme/app"), other),
    ];
    expect(judge(evidence, { attestations: spec.attestations?.slice(0, 1) ?? [] })).toMatchObject({
      reason: "MISSING_ATTESTATION",
    });
    const stranger = { ...signing, release: generateSigningKey() };
    const forged = makeBundle({
      digest,
      key: stranger.release as SigningKey,
      predicateType: SLSA,
      predicate: {},
    });
    const v = judge([good()[0] as SignatureEvidence, bundleEvidence(forged)], {
      attestations: spec.attestations?.slice(0, 1) ?? [],
    });
    expect(v).toMatchObject({ reason: "MISSING_ATTESTATION" });
    expect(v.signatures[1]).toMatchObject({ result: "untrusted" });
  });

  it("the first requirement not met decides; later attestations still get their checks", () => {
    const evidence = [sigBy(["release"]), legacyAttestation("security", VULN, { summary: { critical: 9 } })];
    const verdict = judge(evidence, spec);
    expect(verdict).toMatchObject({
      reason: "MISSING_ATTESTATION",
      detail: `attestation provenance: no verified ${SLSA} attestation signed by release`,
    });
    expect(verdict.signatures.find((r) => r.predicateType === VULN)?.requirements).toEqual([
      {
        attestation: "scan",
        result: "rejected",
        detail: 'signed by security: condition "predicate.summary.critical == 0" is false',
      },
    ]);
    const anyone = judge([sigBy(["release"])], { attestations: [{ name: "scan", predicateType: VULN }] });
    expect(anyone).toMatchObject({ detail: `attestation scan: no verified ${VULN} attestation` });
  });

  it("signatures come first: attestations never make up for a missing signature", () => {
    expect(judge(good().slice(1), spec)).toMatchObject({ reason: "NO_SIGNATURE" });
  });

  it("no signers list: any of the policy's signers", () => {
    const anyone = { attestations: [{ name: "scan", predicateType: VULN }] };
    expect(judge([sigBy(["release"]), legacyAttestation("qa", VULN, {})], anyone)).toMatchObject({
      status: "verified",
    });
  });

  it("the real cosign attestation (keyless, public-good): met for an identity allowed for it", () => {
    const bytes = vectorBytes(ATTESTATION_BUNDLE);
    const parsed = JSON.parse(bytes.toString());
    const statement = JSON.parse(Buffer.from(parsed.dsseEnvelope.payload, "base64").toString());
    const subject = `sha256:${statement.subject[0].digest.sha256}`;
    const cody: KeylessAuthority = {
      kind: "keyless",
      name: "cody",
      identity: compileSignerIdentity({
        name: "cody",
        issuer: "https://github.com/login/oauth",
        subject: "cody@soyland.com",
      }),
      root: TEST_ROOT,
    };
    const release = authority("release");
    const signed = legacySignatureEvidence(subject, simpleSigningPayload(subject), [
      signing.release as SigningKey,
    ]);
    const att = bundleEvidence(bytes);
    const requirement = (condition: string) =>
      requirements({
        attestations: [
          {
            name: "custom",
            predicateType: "https://cosign.sigstore.dev/attestation/v1",
            signers: ["cody"],
            condition,
          },
        ],
      });
    const met = judgeSignatures({
      digest: subject,
      authorities: [release, cody],
      evidence: [signed, att],
      requirements: requirement('predicate.Data.startsWith("{")'),
    });
    expect(met).toMatchObject({ status: "verified", key: "release" });
    const rejected = judgeSignatures({
      digest: subject,
      authorities: [release, cody],
      evidence: [signed, att],
      requirements: requirement('predicate.Timestamp == "2020"'),
    });
    expect(rejected).toMatchObject({ reason: "ATTESTATION_REJECTED" });
  });
});

describe("mayMeetRequirements: could one format's evidence alone meet the policy?", () => {
  const reqs = (spec: Partial<RequirementsSpec>) => requirements(spec);
  const scan = { attestations: [{ name: "scan", predicateType: VULN }] };
  it("counts signature candidates against the threshold, and asks for an attestation candidate when some are required", () => {
    expect(mayMeetRequirements([], reqs({}))).toBe(false);
    expect(mayMeetRequirements([sigBy(["release"])], reqs({}))).toBe(true);
    expect(mayMeetRequirements([sigBy(["release"])], reqs({ threshold: 2 }))).toBe(false);
    expect(mayMeetRequirements([sigBy(["release", "qa"])], reqs({ threshold: 2 }))).toBe(true);
    expect(mayMeetRequirements([sigBy(["release"])], reqs(scan))).toBe(false);
    expect(mayMeetRequirements([legacyAttestation("security", VULN, {})], reqs(scan))).toBe(false);
    expect(
      mayMeetRequirements([sigBy(["release"]), legacyAttestation("security", VULN, {})], reqs(scan)),
    ).toBe(true);
    // A bundle is a signature or an attestation (only its verified statement says which): it counts once.
    const bundle = attestation("security", VULN, {});
    expect(mayMeetRequirements([bundle], reqs({}))).toBe(true);
    expect(mayMeetRequirements([bundle], reqs(scan))).toBe(false);
    expect(mayMeetRequirements([bundle, bundle], reqs(scan))).toBe(true);
    expect(mayMeetRequirements([sigBy(["release"]), bundle], reqs(scan))).toBe(true);
    const two = { attestations: [...scan.attestations, { name: "provenance", predicateType: SLSA }] };
    expect(
      mayMeetRequirements([sigBy(["release"]), legacyAttestation("security", VULN, {})], reqs(two)),
    ).toBe(false);
  });
});

describe("compileRequirements", () => {
  it("reports a condition that does not compile, by where it is", () => {
    const r = compileRequirements({
      threshold: 1,
      requiredSigners: [],
      annotations: {},
      attestations: [
        { name: "a", predicateType: SLSA },
        { name: "b", predicateType: SLSA, condition: "predicate.(" },
      ],
    });
    expect("problems" in r && r.problems[0]).toMatch(/^attestations\[1\]\.condition: /);
  });
});
