import { createHash, generateKeyPairSync, type KeyObject, sign, X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ATTESTATION_BUNDLE,
  FIXTURES,
  fixtureCase,
  readDirSignature,
  sha256Digest,
  toLayer,
  vectorBytes,
  vectorKey,
} from "../../test/support/vectors.ts";
import { judgeWithKeys, TEST_ROOT } from "./authorities.test-helpers.ts";
import {
  BUNDLE_V03_MEDIA_TYPE,
  COSIGN_SIGN_PREDICATE,
  COSIGN_SIGNATURE_ANNOTATION,
  MAX_BUNDLES,
  MAX_LEGACY_LAYERS,
  MAX_SIGNATURE_CHECKS,
  SIMPLESIGNING_MEDIA_TYPE,
} from "./cosign-format.ts";
import { judgeSignatures } from "./judge-signatures.ts";
import { compileSignerIdentity } from "./signer-identity.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import type {
  BundleEvidence,
  LegacyLayerEvidence,
  LegacySignatureEvidence,
  SignatureEvidence,
  TrustedKey,
} from "./types.ts";
import type { KeylessAuthority } from "./verify-authorities.ts";
import { verifySignatureBytes } from "./verify-signature-bytes.ts";

const cosignPub = vectorKey(`${FIXTURES}/cosign.pub`, "cosign");
const cosign2Pub = vectorKey(`${FIXTURES}/cosign2.pub`, "cosign2");
const VALID_DIGEST = "sha256:634a8f35b5f16dcf4aaa0822adc0b1964bb786fca12f6831de8ddc45e5986a00";

function legacy(
  layers: LegacyLayerEvidence[],
  source = sha256Digest(Buffer.from("sig")),
): LegacySignatureEvidence {
  return { format: "cosign-legacy", source, layers };
}

function judgeCase(name: string, keys: readonly TrustedKey[], digest?: string) {
  const fixture = fixtureCase(name);
  return judgeWithKeys({ digest: digest ?? fixture.digest ?? "", keys, evidence: [fixture.evidence] });
}

describe("judgeSignatures: containers/image cosign fixtures (real signatures)", () => {
  it("dir-img-cosign-valid with cosign.pub: verified, by that key, for sha256(manifest.json)", () => {
    const fixture = fixtureCase("dir-img-cosign-valid");
    expect(fixture.digest).toBe(VALID_DIGEST);
    const verdict = judgeCase("dir-img-cosign-valid", [cosignPub]);
    expect(verdict).toMatchObject({
      status: "verified",
      digest: VALID_DIGEST,
      format: "cosign-legacy",
      key: "cosign",
      keyFingerprint: cosignPub.fingerprint,
    });
    expect(verdict.signatures).toEqual([
      {
        format: "cosign-legacy",
        source: fixture.evidence.source,
        payloadDigest: fixture.evidence.layers[0]?.digest,
        result: "verified",
        key: "cosign",
        keyFingerprint: cosignPub.fingerprint,
      },
    ]);
  });

  it("dir-img-cosign-valid with cosign2.pub: UNTRUSTED_SIGNATURE", () => {
    const verdict = judgeCase("dir-img-cosign-valid", [cosign2Pub]);
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.signatures.map((s) => s.result)).toEqual(["untrusted"]);
    expect(verdict.signatures[0]?.key).toBeUndefined();
  });

  it("dir-img-cosign-valid with no trusted keys at all: UNTRUSTED_SIGNATURE", () => {
    expect(judgeCase("dir-img-cosign-valid", [])).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
    });
  });

  it("dir-img-cosign-valid with the right key among others: verified by the right one", () => {
    expect(judgeCase("dir-img-cosign-valid", [cosign2Pub, cosignPub])).toMatchObject({
      status: "verified",
      key: "cosign",
    });
  });

  it("dir-img-cosign-valid with any single payload bit flipped: untrusted", () => {
    const fixture = fixtureCase("dir-img-cosign-valid");
    const layer = fixture.evidence.layers[0] as LegacyLayerEvidence;
    const payload = layer.payload as Uint8Array;
    for (const index of [0, 1, 37, payload.length - 1]) {
      for (const bit of [0x01, 0x80]) {
        const flipped = Buffer.from(payload);
        flipped[index] = (flipped[index] as number) ^ bit;
        const verdict = judgeWithKeys({
          digest: VALID_DIGEST,
          keys: [cosignPub],
          evidence: [legacy([{ ...layer, payload: flipped }])],
        });
        expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
        expect(verdict.signatures[0]?.result).toBe("untrusted");
      }
    }
  });

  it("dir-img-cosign-valid-with-tag (containers/image signer: tag, creator, timestamp): verified", () => {
    expect(judgeCase("dir-img-cosign-valid-with-tag", [cosignPub])).toMatchObject({ status: "verified" });
  });

  it("dir-img-cosign-valid-2: both signatures verified, the first one wins", () => {
    const verdict = judgeCase("dir-img-cosign-valid-2", [cosignPub]);
    expect(verdict.status).toBe("verified");
    expect(verdict.signatures.map((s) => s.result)).toEqual(["verified", "verified"]);
  });

  it("dir-img-cosign-mixed: signature-1 by an unknown key is untrusted, signature-2 verifies: allowed", () => {
    const verdict = judgeCase("dir-img-cosign-mixed", [cosignPub]);
    expect(verdict).toMatchObject({ status: "verified", key: "cosign" });
    expect(verdict.signatures.map((s) => s.result)).toEqual(["untrusted", "verified"]);
  });

  it("dir-img-cosign-modified-manifest: a valid signature for another digest: DIGEST_MISMATCH", () => {
    const fixture = fixtureCase("dir-img-cosign-modified-manifest");
    expect(fixture.digest).not.toBe(VALID_DIGEST);
    const verdict = judgeCase("dir-img-cosign-modified-manifest", [cosignPub]);
    expect(verdict).toMatchObject({ status: "denied", reason: "DIGEST_MISMATCH" });
    expect(verdict.signatures[0]).toMatchObject({ result: "digest-mismatch", key: "cosign" });
    expect(verdict.signatures[0]?.detail).toContain(VALID_DIGEST);
  });

  it("dir-img-cosign-other-attachment: a text/plain layer with a signature annotation is not a signature", () => {
    const verdict = judgeCase("dir-img-cosign-other-attachment", [cosignPub]);
    expect(verdict).toMatchObject({ status: "denied", reason: "NO_SIGNATURE" });
    expect(verdict.signatures.map((s) => s.result)).toEqual(["not-a-signature"]);
  });

  it("dir-img-cosign-manifest-digest-error: the schema1 manifest hashes to another digest: denied", () => {
    const verdict = judgeCase("dir-img-cosign-manifest-digest-error", [cosignPub]);
    expect(verdict).toMatchObject({ status: "denied", reason: "DIGEST_MISMATCH" });
  });

  it("dir-img-cosign-no-manifest: with nothing to bind to (no or malformed digest) nothing is allowed", () => {
    const fixture = fixtureCase("dir-img-cosign-no-manifest");
    expect(fixture.digest).toBeUndefined();
    for (const digest of ["", "sha256:", "latest", VALID_DIGEST.toUpperCase()]) {
      const verdict = judgeWithKeys({ digest, keys: [cosignPub], evidence: [fixture.evidence] });
      expect(verdict).toMatchObject({ status: "denied", reason: "DIGEST_MISMATCH" });
    }
  });

  it("dir-img-cosign-key-rekor-valid with cosign2.pub: verified (the SET is checked against the root's Rekor key)", () => {
    expect(judgeCase("dir-img-cosign-key-rekor-valid", [cosign2Pub])).toMatchObject({
      status: "verified",
      key: "cosign2",
    });
    expect(judgeCase("dir-img-cosign-key-rekor-valid", [cosignPub])).toMatchObject({
      reason: "UNTRUSTED_SIGNATURE",
    });
  });

  it("dir-img-cosign-fulcio-rekor-valid: a keyless signature needs a keyless identity; its leaf's key as a key is not one", () => {
    const fixture = fixtureCase("dir-img-cosign-fulcio-rekor-valid");
    const certPem = fixture.signatures[0]?.annotations["dev.sigstore.cosign/certificate"] as string;
    const leafKey = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "pem" }).toString();
    const key = parseTrustedKey({ name: "fulcio-leaf", pem: leafKey });
    expect(judgeCase("dir-img-cosign-fulcio-rekor-valid", [key])).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
      signatures: [
        { result: "untrusted", subject: "mitr@redhat.com", issuer: "https://github.com/login/oauth" },
      ],
    });
    const mitr: KeylessAuthority = {
      kind: "keyless",
      name: "mitr",
      identity: compileSignerIdentity({
        name: "mitr",
        issuer: "https://github.com/login/oauth",
        subject: "mitr@redhat.com",
      }),
      root: TEST_ROOT,
    };
    const verdict = judgeSignatures({
      digest: fixture.digest ?? "",
      authorities: [mitr],
      evidence: [fixture.evidence],
    });
    expect(verdict).toMatchObject({ status: "verified", key: "mitr" });
    expect(verdict.signatures[0]).toMatchObject({
      subject: "mitr@redhat.com",
      logEntry: { integratedTime: "2023-01-20T20:51:33.000Z" },
    });
  });

  it("dir-img-cosign-pki-valid: a private-PKI certificate without a transparency log is not accepted (not supported)", () => {
    const fixture = fixtureCase("dir-img-cosign-pki-valid");
    const layer = fixture.signatures[0];
    expect(layer?.annotations[COSIGN_SIGNATURE_ANNOTATION]).toContain("\n");
    const certPem = layer?.annotations["dev.sigstore.cosign/certificate"] as string;
    const leafKey = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "pem" }).toString();
    const key = parseTrustedKey({ name: "pki-leaf", pem: leafKey });
    expect(key.algorithm).toBe("rsa");
    expect(judgeCase("dir-img-cosign-pki-valid", [key])).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
    });
  });

  it("internal/testdata rekor-payload + rekor-sig: verified with the rekor-cert key for the digest it names", () => {
    const payload = vectorBytes("containers-image/signature/internal/testdata/rekor-payload");
    const signature = vectorBytes("containers-image/signature/internal/testdata/rekor-sig").toString().trim();
    const certPem = vectorBytes("containers-image/signature/internal/testdata/rekor-cert").toString();
    const leafKey = new X509Certificate(certPem).publicKey.export({ type: "spki", format: "pem" }).toString();
    const named = JSON.parse(payload.toString()).critical.image["docker-manifest-digest"] as string;
    const verdict = judgeWithKeys({
      digest: named,
      keys: [parseTrustedKey({ name: "rekor-cert", pem: leafKey })],
      evidence: [
        legacy([
          {
            mediaType: SIMPLESIGNING_MEDIA_TYPE,
            digest: sha256Digest(payload),
            annotations: { [COSIGN_SIGNATURE_ANNOTATION]: signature },
            payload,
          },
        ]),
      ],
    });
    expect(verdict.status).toBe("verified");
  });

  it("unknown-cosign-key.signature: untrusted with every fixture key", () => {
    const layer = toLayer(readDirSignature(`${FIXTURES}/unknown-cosign-key.signature`));
    const verdict = judgeWithKeys({
      digest: VALID_DIGEST,
      keys: [cosignPub, cosign2Pub],
      evidence: [legacy([layer])],
    });
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
  });
});

describe("judgeSignatures: legacy layer edge cases", () => {
  const valid = fixtureCase("dir-img-cosign-valid").evidence.layers[0] as LegacyLayerEvidence;
  const judgeLayer = (layer: LegacyLayerEvidence) =>
    judgeWithKeys({ digest: VALID_DIGEST, keys: [cosignPub], evidence: [legacy([layer])] });

  it("payload not fetched: invalid, with a detail", () => {
    const verdict = judgeLayer({ ...valid, payload: undefined });
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.signatures[0]).toMatchObject({ result: "invalid" });
    expect(verdict.signatures[0]?.detail).toMatch(/payload/);
  });

  it("missing, empty or non-base64 signature annotation: invalid", () => {
    const signature = valid.annotations[COSIGN_SIGNATURE_ANNOTATION] as string;
    for (const annotations of [
      {},
      { [COSIGN_SIGNATURE_ANNOTATION]: "" },
      { [COSIGN_SIGNATURE_ANNOTATION]: `${signature}!` },
    ] as Record<string, string>[]) {
      expect(judgeLayer({ ...valid, annotations }).signatures[0]?.result).toBe("invalid");
    }
    const urlSafe = signature.replace(/\+/g, "-").replace(/\//g, "_");
    if (urlSafe !== signature) {
      expect(
        judgeLayer({ ...valid, annotations: { [COSIGN_SIGNATURE_ANNOTATION]: urlSafe } }).signatures[0]
          ?.result,
      ).toBe("invalid");
    }
  });

  it("a mediaType other than simplesigning does not count even with a valid signature", () => {
    const verdict = judgeLayer({ ...valid, mediaType: "application/vnd.dsse.envelope.v1+json" });
    expect(verdict).toMatchObject({ reason: "NO_SIGNATURE" });
  });
});

// ---- self-made signatures with fresh keys --------------------------------------------------------

interface Signer {
  name: string;
  privateKey: KeyObject;
  trusted: TrustedKey;
  hash: string | null;
}

function makeSigner(
  name: string,
  type: "ec" | "rsa" | "ed25519",
  namedCurve = "P-256",
  hash: string | null = "sha256",
): Signer {
  const { privateKey, publicKey } =
    type === "ec"
      ? generateKeyPairSync("ec", { namedCurve })
      : type === "rsa"
        ? generateKeyPairSync("rsa", { modulusLength: 2048 })
        : generateKeyPairSync("ed25519");
  const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return { name, privateKey, trusted: parseTrustedKey({ name, pem }), hash };
}

function legacyLayer(signer: Signer, digest: string, payloadDigest = digest): LegacyLayerEvidence {
  const payload = Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": "registry.test/app" },
        image: { "docker-manifest-digest": payloadDigest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
  return {
    mediaType: SIMPLESIGNING_MEDIA_TYPE,
    digest: sha256Digest(payload),
    annotations: {
      [COSIGN_SIGNATURE_ANNOTATION]: sign(signer.hash, payload, signer.privateKey).toString("base64"),
    },
    payload,
  };
}

function pae(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

function bundleEvidence(
  signer: Signer,
  digest: string,
  options: {
    predicateType?: string;
    statementType?: string;
    payloadType?: string;
    hint?: string;
    signRaw?: boolean;
    artifactType?: string | undefined;
  } = {},
): BundleEvidence {
  const [algorithm, hex] = digest.split(":") as [string, string];
  const statement = Buffer.from(
    JSON.stringify({
      _type: options.statementType ?? "https://in-toto.io/Statement/v1",
      subject: [{ digest: { [algorithm]: hex } }],
      predicateType: options.predicateType ?? COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  );
  const payloadType = options.payloadType ?? "application/vnd.in-toto+json";
  const signed = options.signRaw ? statement : pae(payloadType, statement);
  const spki = signer.trusted.key.export({ type: "spki", format: "der" });
  const bundle = {
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: {
      publicKey: { hint: options.hint ?? createHash("sha256").update(spki).digest("base64") },
      tlogEntries: [],
    },
    dsseEnvelope: {
      payload: statement.toString("base64"),
      payloadType,
      signatures: [{ sig: sign(signer.hash, signed, signer.privateKey).toString("base64"), keyid: "" }],
    },
  };
  const bytes = Buffer.from(JSON.stringify(bundle));
  return {
    format: "sigstore-bundle",
    source: sha256Digest(Buffer.concat([bytes, Buffer.from("manifest")])),
    artifactType: "artifactType" in options ? options.artifactType : BUNDLE_V03_MEDIA_TYPE,
    bundle: bytes,
  };
}

const DIGEST = sha256Digest(Buffer.from("an image manifest"));
const OTHER = sha256Digest(Buffer.from("another image manifest"));

const signers: Signer[] = [
  makeSigner("p256", "ec", "P-256"),
  makeSigner("p384-sha384", "ec", "P-384", "sha384"),
  makeSigner("p384-sha256", "ec", "P-384", "sha256"),
  makeSigner("p521", "ec", "P-521", "sha512"),
  makeSigner("rsa", "rsa"),
  makeSigner("ed25519", "ed25519", "", null),
];

describe("judgeSignatures: self-made signatures, every algorithm", () => {
  it.each(signers.map((s) => [s.name, s] as const))(
    "%s: a legacy signature verifies; a wrong key is untrusted",
    (_, signer) => {
      const evidence = [legacy([legacyLayer(signer, DIGEST)])];
      expect(judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence })).toMatchObject({
        status: "verified",
        format: "cosign-legacy",
        key: signer.name,
        keyFingerprint: signer.trusted.fingerprint,
      });
      const other = makeSigner("other", "ec");
      expect(judgeWithKeys({ digest: DIGEST, keys: [other.trusted], evidence })).toMatchObject({
        status: "denied",
        reason: "UNTRUSTED_SIGNATURE",
      });
    },
  );

  it.each(signers.map((s) => [s.name, s] as const))(
    "%s: a DSSE bundle signature verifies; a wrong key is untrusted",
    (_, signer) => {
      const evidence = [bundleEvidence(signer, DIGEST)];
      expect(judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence })).toMatchObject({
        status: "verified",
        format: "sigstore-bundle",
        key: signer.name,
      });
      const other = makeSigner("other", "ec");
      const verdict = judgeWithKeys({ digest: DIGEST, keys: [other.trusted], evidence });
      expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
      expect(verdict.signatures[0]?.result).toBe("untrusted");
    },
  );

  it("legacy: a trusted signature for another digest is DIGEST_MISMATCH, and a verified one elsewhere still wins", () => {
    const [signer] = signers as [Signer];
    const mismatch = legacyLayer(signer, DIGEST, OTHER);
    expect(
      judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [legacy([mismatch])] }),
    ).toMatchObject({
      reason: "DIGEST_MISMATCH",
    });
    const verdict = judgeWithKeys({
      digest: DIGEST,
      keys: [signer.trusted],
      evidence: [legacy([mismatch]), bundleEvidence(signer, DIGEST)],
    });
    expect(verdict).toMatchObject({ status: "verified", format: "sigstore-bundle" });
    expect(verdict.signatures.map((s) => s.result)).toEqual(["digest-mismatch", "verified"]);
  });

  it("legacy: the signed payload must be a cosign simple-signing payload naming the exact digest string", () => {
    const [signer] = signers as [Signer];
    const layerFor = (claims: unknown) => {
      const payload = Buffer.from(JSON.stringify(claims));
      return {
        mediaType: SIMPLESIGNING_MEDIA_TYPE,
        digest: sha256Digest(payload),
        annotations: {
          [COSIGN_SIGNATURE_ANNOTATION]: sign("sha256", payload, signer.privateKey).toString("base64"),
        },
        payload,
      };
    };
    const judge = (claims: unknown) =>
      judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [legacy([layerFor(claims)])] })
        .signatures[0]?.result;
    const image = { "docker-manifest-digest": DIGEST };
    expect(judge({ critical: { type: "cosign container image signature", image } })).toBe("verified");
    expect(judge({ critical: { type: "something else", image } })).toBe("invalid");
    expect(judge({ critical: { image } })).toBe("invalid");
    expect(judge({ critical: { type: "cosign container image signature", image: {} } })).toBe("invalid");
    expect(judge("just a string")).toBe("invalid");
    expect(
      judge({
        critical: {
          type: "cosign container image signature",
          image: { "docker-manifest-digest": ` ${DIGEST}` },
        },
      }),
    ).toBe("digest-mismatch");
    expect(
      judge({
        critical: {
          type: "cosign container image signature",
          image: { "docker-manifest-digest": DIGEST.toUpperCase() },
        },
      }),
    ).toBe("digest-mismatch");
  });

  it("bundle: a statement for another digest is DIGEST_MISMATCH", () => {
    const [signer] = signers as [Signer];
    const verdict = judgeWithKeys({
      digest: DIGEST,
      keys: [signer.trusted],
      evidence: [bundleEvidence(signer, OTHER)],
    });
    expect(verdict).toMatchObject({ reason: "DIGEST_MISMATCH" });
    expect(verdict.signatures[0]).toMatchObject({ result: "digest-mismatch", key: signer.name });
  });

  it("bundle: sha512 digests are matched against subject digest.sha512", () => {
    const [signer] = signers as [Signer];
    const digest512 = `sha512:${createHash("sha512").update("m").digest("hex")}`;
    expect(
      judgeWithKeys({
        digest: digest512,
        keys: [signer.trusted],
        evidence: [bundleEvidence(signer, digest512)],
      }),
    ).toMatchObject({ status: "verified" });
  });

  it("bundle: an attestation (any other predicateType) is not a signature, even by a trusted key", () => {
    const [signer] = signers as [Signer];
    const attestation = bundleEvidence(signer, DIGEST, { predicateType: "https://slsa.dev/provenance/v1" });
    const verdict = judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [attestation] });
    expect(verdict).toMatchObject({ status: "denied", reason: "NO_SIGNATURE" });
    expect(verdict.signatures[0]).toMatchObject({
      result: "verified",
      kind: "attestation",
      predicateType: "https://slsa.dev/provenance/v1",
    });
  });

  it("bundle: the DSSE signature must be over PAE, not the raw statement", () => {
    const [signer] = signers as [Signer];
    const raw = bundleEvidence(signer, DIGEST, { signRaw: true });
    expect(judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [raw] })).toMatchObject({
      reason: "UNTRUSTED_SIGNATURE",
    });
  });

  it("bundle: in-toto Statement v0.1 is accepted; other _type or payloadType is invalid", () => {
    const [signer] = signers as [Signer];
    const judge = (evidence: BundleEvidence) =>
      judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [evidence] }).signatures[0]?.result;
    expect(
      judge(bundleEvidence(signer, DIGEST, { statementType: "https://in-toto.io/Statement/v0.1" })),
    ).toBe("verified");
    expect(judge(bundleEvidence(signer, DIGEST, { statementType: "https://in-toto.io/Statement/v2" }))).toBe(
      "invalid",
    );
    expect(judge(bundleEvidence(signer, DIGEST, { payloadType: "application/json" }))).toBe("invalid");
  });

  it("bundle: the key hint only orders keys: a wrong or absent hint still verifies, a hint never makes a key trusted", () => {
    const [a, b] = signers as [Signer, Signer];
    const keys = [a.trusted, b.trusted];
    for (const hint of ["", "AAAA", createHash("sha256").update("x").digest("base64")]) {
      expect(
        judgeWithKeys({ digest: DIGEST, keys, evidence: [bundleEvidence(b, DIGEST, { hint })] }),
      ).toMatchObject({
        status: "verified",
        key: b.name,
      });
    }
    const forged = bundleEvidence(makeSigner("attacker", "ec"), DIGEST, {
      hint: createHash("sha256")
        .update(a.trusted.key.export({ type: "spki", format: "der" }))
        .digest("base64"),
    });
    expect(judgeWithKeys({ digest: DIGEST, keys, evidence: [forged] })).toMatchObject({
      reason: "UNTRUSTED_SIGNATURE",
    });
  });

  it("bundle: another artifactType is not a signature; an absent one is judged by content", () => {
    const [signer] = signers as [Signer];
    const sbom = bundleEvidence(signer, DIGEST, { artifactType: "application/spdx+json" });
    expect(judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [sbom] })).toMatchObject({
      reason: "NO_SIGNATURE",
    });
    const untyped = bundleEvidence(signer, DIGEST, { artifactType: undefined });
    expect(judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [untyped] }).status).toBe(
      "verified",
    );
  });

  it("bundle: unparsable bytes, non-bundle JSON and messageSignature bundles", () => {
    const [signer] = signers as [Signer];
    const base = bundleEvidence(signer, DIGEST);
    const judge = (bundle: Uint8Array) =>
      judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [{ ...base, bundle }] }).signatures[0]
        ?.result;
    expect(judge(Buffer.from("not json"))).toBe("invalid");
    expect(judge(Buffer.from([0xff, 0xfe, 0x00]))).toBe("invalid");
    expect(judge(Buffer.from('{"mediaType":"application/vnd.dev.sigstore.bundle.v0.3+json"}'))).toBe(
      "invalid",
    );
    expect(judge(Buffer.from("null"))).toBe("invalid");
    const blob = vectorBytes(
      "sigstore-conformance/test/assets/bundle-verify/managed-key-happy-path/bundle.sigstore.json",
    );
    expect(judge(blob)).toBe("not-a-signature");
  });
});

describe("judgeSignatures: the cosign OCI attestation bundle (real, keyless, DSSE)", () => {
  const bundleBytes = vectorBytes(ATTESTATION_BUNDLE);
  const bundle = JSON.parse(bundleBytes.toString());
  const certDer = Buffer.from(bundle.verificationMaterial.certificate.rawBytes, "base64");
  const leafPem = new X509Certificate(certDer).publicKey.export({ type: "spki", format: "pem" }).toString();
  const leaf = parseTrustedKey({ name: "attestation-leaf", pem: leafPem });
  const statement = JSON.parse(Buffer.from(bundle.dsseEnvelope.payload, "base64").toString());
  const subject = `sha256:${statement.subject[0].digest.sha256}`;

  it("its DSSE signature verifies over PAE, not over the raw payload", () => {
    const payload = Buffer.from(bundle.dsseEnvelope.payload, "base64");
    const sig = Buffer.from(bundle.dsseEnvelope.signatures[0].sig, "base64");
    expect(verifySignatureBytes(leaf, pae(bundle.dsseEnvelope.payloadType, payload), sig)).toBe(true);
    expect(verifySignatureBytes(leaf, payload, sig)).toBe(false);
  });

  it("is an attestation: verified as one for its own subject, but it does not sign the image", () => {
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
    const verdict = judgeSignatures({
      digest: subject,
      authorities: [cody],
      evidence: [
        {
          format: "sigstore-bundle",
          source: sha256Digest(bundleBytes),
          artifactType: BUNDLE_V03_MEDIA_TYPE,
          bundle: bundleBytes,
        },
      ],
    });
    expect(verdict).toMatchObject({ status: "denied", reason: "NO_SIGNATURE" });
    expect(verdict.signatures[0]).toMatchObject({
      result: "verified",
      kind: "attestation",
      key: "cody",
      subject: "cody@soyland.com",
      predicateType: "https://cosign.sigstore.dev/attestation/v1",
    });
  });
});

describe("judgeSignatures: verdict assembly and caps", () => {
  const [signer] = signers as [Signer];

  it("no evidence: NO_SIGNATURE with no reports", () => {
    expect(judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [] })).toEqual({
      status: "denied",
      digest: DIGEST,
      reason: "NO_SIGNATURE",
      signatures: [],
    });
  });

  it("DIGEST_MISMATCH outranks UNTRUSTED_SIGNATURE outranks NO_SIGNATURE, whatever the order", () => {
    const other = makeSigner("other", "ec");
    const untrusted = legacy([legacyLayer(other, DIGEST)]);
    const mismatch = legacy([legacyLayer(signer, DIGEST, OTHER)]);
    const notSig = legacy([{ ...legacyLayer(signer, DIGEST), mediaType: "text/plain" }]);
    const judge = (evidence: SignatureEvidence[]) =>
      judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence });
    expect(judge([untrusted, mismatch, notSig])).toMatchObject({ reason: "DIGEST_MISMATCH" });
    expect(judge([mismatch, untrusted])).toMatchObject({ reason: "DIGEST_MISMATCH" });
    expect(judge([notSig, untrusted])).toMatchObject({ reason: "UNTRUSTED_SIGNATURE" });
    expect(judge([notSig])).toMatchObject({ reason: "NO_SIGNATURE" });
    const verdict = judge([untrusted, mismatch, notSig, legacy([legacyLayer(signer, DIGEST)])]);
    expect(verdict.status).toBe("verified");
    expect(verdict.signatures.map((s) => s.result)).toEqual([
      "untrusted",
      "digest-mismatch",
      "not-a-signature",
      "verified",
    ]);
  });

  it(`judges at most ${MAX_LEGACY_LAYERS} legacy layers; the rest are one not-considered report`, () => {
    const other = makeSigner("other", "ec");
    const bad = legacyLayer(other, DIGEST);
    const good = legacyLayer(signer, DIGEST);
    // Distinct layers (identical ones are judged once: see below).
    const first = legacy(Array.from({ length: MAX_LEGACY_LAYERS - 1 }, () => legacyLayer(other, DIGEST)));
    const second = legacy([bad, good, legacyLayer(other, DIGEST)], sha256Digest(Buffer.from("second")));
    const verdict = judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [first, second] });
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.signatures).toHaveLength(MAX_LEGACY_LAYERS + 1);
    expect(verdict.signatures.at(-1)).toMatchObject({ result: "not-considered", source: second.source });
    expect(verdict.signatures.at(-1)?.detail).toMatch(/^2 layer/);
  });

  it("matchRepository: a legacy signature counts only for the repository its docker-reference names", () => {
    const layer = legacyLayer(signer, DIGEST); // docker-reference registry.test/app
    const judgeFor = (repository?: { registry: string; name: string }) =>
      judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [legacy([layer])], repository });
    expect(judgeFor()).toMatchObject({ status: "verified" });
    expect(judgeFor({ registry: "registry.test", name: "app" })).toMatchObject({ status: "verified" });
    const other = judgeFor({ registry: "registry.test", name: "other" });
    expect(other).toMatchObject({ status: "denied", reason: "REPOSITORY_MISMATCH" });
    expect(other.signatures[0]).toMatchObject({ result: "repository-mismatch", key: signer.trusted.name });
    expect(judgeFor({ registry: "elsewhere.test", name: "app" })).toMatchObject({
      reason: "REPOSITORY_MISMATCH",
    });
  });

  it("matchRepository: a bundle whose statement names no repository does not count (cosign v3 names none)", () => {
    const verdict = judgeWithKeys({
      digest: DIGEST,
      keys: [signer.trusted],
      evidence: [bundleEvidence(signer, DIGEST)],
      repository: { registry: "registry.test", name: "app" },
    });
    expect(verdict).toMatchObject({ status: "denied", reason: "REPOSITORY_MISMATCH" });
    expect(
      judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [bundleEvidence(signer, DIGEST)] }),
    ).toMatchObject({ status: "verified" });
  });

  it("judges identical layers once (a .sig repeating one layer costs one check), reporting each", () => {
    const bad = legacyLayer(makeSigner("other", "ec"), DIGEST);
    const good = legacyLayer(signer, DIGEST);
    const repeated = legacy([...Array.from({ length: 5000 }, () => bad), good]);
    const verdict = judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence: [repeated] });
    expect(verdict).toMatchObject({ status: "verified" });
    expect(verdict.signatures).toHaveLength(5001);
  });

  it(`stops after ${MAX_SIGNATURE_CHECKS} signature checks (candidates × trusted keys)`, () => {
    const other = makeSigner("other", "ec");
    const keys = [signer.trusted, ...Array.from({ length: 9 }, (_, i) => makeSigner(`k${i}`, "ec").trusted)];
    const layers = Array.from({ length: 120 }, () => legacyLayer(other, DIGEST));
    const verdict = judgeWithKeys({
      digest: DIGEST,
      keys,
      evidence: [legacy([...layers, legacyLayer(signer, DIGEST)])],
    });
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    const judged = verdict.signatures.filter((r) => r.result !== "not-considered");
    expect(judged).toHaveLength(Math.floor(MAX_SIGNATURE_CHECKS / keys.length));
    expect(verdict.signatures.at(-1)?.detail).toMatch(/signature checks/);
  });

  it(`judges at most ${MAX_BUNDLES} bundles; the rest are one not-considered report`, () => {
    const other = makeSigner("other", "ec");
    const bad = bundleEvidence(other, DIGEST);
    const evidence = [...Array.from({ length: MAX_BUNDLES }, () => bad), bundleEvidence(signer, DIGEST), bad];
    const verdict = judgeWithKeys({ digest: DIGEST, keys: [signer.trusted], evidence });
    expect(verdict).toMatchObject({ status: "denied", reason: "UNTRUSTED_SIGNATURE" });
    expect(verdict.signatures).toHaveLength(MAX_BUNDLES + 1);
    expect(verdict.signatures.at(-1)).toMatchObject({ result: "not-considered" });
    expect(verdict.signatures.at(-1)?.detail).toMatch(/^2 bundle/);
  });
});
