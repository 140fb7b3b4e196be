import { createHash, generateKeyPairSync } from "node:crypto";
import { readFileSync } from "node:fs";
import { bundleFromJSON } from "@sigstore/bundle";
import { pem } from "@sigstore/core";
import { describe, expect, it } from "vitest";
import {
  ATTESTATION_BUNDLE,
  CONFORMANCE,
  FIXTURES,
  PGI_ROOT,
  readDirSignature,
  vectorBytes,
  vectorKey,
  vectorText,
} from "../../test/support/vectors.ts";
import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
} from "./cosign-format.ts";
import { legacyLayerBundle } from "./legacy-bundle.ts";
import { rekorBodySigners } from "./rekor-body-signer.ts";
import { compileSignerIdentity, type SignerIdentitySpec } from "./signer-identity.ts";
import { parseTrustRoot, type TrustRoot } from "./trust-root.ts";
import { keyHint, parseTrustedKey } from "./trusted-key.ts";
import {
  type Authority,
  type AuthorityVerification,
  describeCertificate,
  type KeyAuthority,
  type KeylessAuthority,
  verifyAgainstAuthorities,
} from "./verify-authorities.ts";

// Keyless and transparency-log verification against real cosign signatures (shared/vectors).

const pgi = parseTrustRoot("public-good", vectorText(PGI_ROOT));
const KEYLESS = `${FIXTURES}/dir-img-cosign-fulcio-rekor-valid/signature-1`;
const KEY_REKOR = `${FIXTURES}/dir-img-cosign-key-rekor-valid/signature-1`;
const KEY_ONLY = `${FIXTURES}/dir-img-cosign-valid/signature-1`;

function keyless(
  spec: Omit<SignerIdentitySpec, "name">,
  root: TrustRoot = pgi,
  name = "ci",
): KeylessAuthority {
  return { kind: "keyless", name, identity: compileSignerIdentity({ name, ...spec }), root };
}

function key(file: string, transparencyLog: "required" | "optional", root: TrustRoot = pgi): KeyAuthority {
  return { kind: "key", name: file, key: vectorKey(`${FIXTURES}/${file}`), transparencyLog, root };
}

/** Verifies a containers/image `signature-N` vector (a legacy layer), with its annotations changed by `edit`. */
function verifyLegacy(
  path: string,
  authorities: Authority[],
  edit: (s: { payload: Buffer; annotations: Record<string, string> }) => void = () => {},
): AuthorityVerification {
  const signature = readDirSignature(path);
  const layer = { payload: Buffer.from(signature.payload), annotations: { ...signature.annotations } };
  edit(layer);
  const sha = createHash("sha256").update(layer.payload).digest();
  const bundle = legacyLayerBundle(
    layer.annotations[COSIGN_SIGNATURE_ANNOTATION] ?? "",
    layer.annotations,
    sha,
  );
  if (typeof bundle === "string") throw new Error(bundle);
  return verifyAgainstAuthorities(bundle, layer.payload, authorities);
}

/** The Rekor SET annotation with `change` applied to its JSON. */
function changeSet(
  annotations: Record<string, string>,
  change: (set: Record<string, unknown>) => void,
): void {
  const set = JSON.parse(annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] ?? "{}") as Record<string, unknown>;
  change(set);
  annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] = JSON.stringify(set);
}

/** The public-good root with its Rekor log key replaced by another key under the same log ID. */
function rootWithOtherRekorKey(): TrustRoot {
  const root = JSON.parse(vectorText(PGI_ROOT)) as { tlogs: Array<{ publicKey: { rawBytes: string } }> };
  const other = generateKeyPairSync("ec", { namedCurve: "prime256v1" }).publicKey.export({
    type: "spki",
    format: "der",
  });
  for (const log of root.tlogs) log.publicKey.rawBytes = other.toString("base64");
  return parseTrustRoot("forged", JSON.stringify(root));
}

const MITR = { issuer: "https://github.com/login/oauth", subject: "mitr@redhat.com" };

describe("keyless legacy .sig layer (Fulcio certificate, Rekor SET)", () => {
  it("verifies with the public-good root and the signer's identity, and names the log entry", () => {
    const r = verifyLegacy(KEYLESS, [keyless(MITR)]);
    expect(r).toMatchObject({ ok: true, authority: { name: "ci" } });
    expect(r.ok && r.certificate?.subjects).toContain("mitr@redhat.com");
    expect(r.ok && r.logEntry).toEqual({
      logId: expect.stringMatching(/^c0d23d6a/),
      logIndex: expect.any(String),
      integratedTime: "2023-01-20T20:51:33.000Z",
    });
  });

  it("takes the first identity that matches among several", () => {
    const r = verifyLegacy(KEYLESS, [
      keyless({ issuer: MITR.issuer, subject: "someone@redhat.com" }, pgi, "other"),
      keyless(MITR, pgi, "mitr"),
    ]);
    expect(r).toMatchObject({ ok: true, authority: { name: "mitr" } });
  });

  it.each([
    ["another subject", { issuer: MITR.issuer, subject: "someone@redhat.com" }],
    ["another issuer", { issuer: "https://accounts.google.com", subject: MITR.subject }],
    [
      "an unanchored-looking pattern (anchored here, unlike cosign)",
      { issuer: MITR.issuer, subjectRegExp: "mitr" },
    ],
    ["a pattern for another domain", { issuer: MITR.issuer, subjectRegExp: ".*@example\\.com" }],
    [
      "an issuer pattern that only matches a prefix",
      { issuerRegExp: "https://github\\.com", subject: MITR.subject },
    ],
  ])("refuses %s, saying who signed", (_, spec) => {
    const r = verifyLegacy(KEYLESS, [keyless(spec)]);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.detail).toContain("subject mitr@redhat.com, issuer https://github.com/login/oauth");
    expect(!r.ok && r.detail).toContain("matches no accepted identity (ci)");
  });

  it("accepts anchored patterns that match the whole value", () => {
    expect(
      verifyLegacy(KEYLESS, [keyless({ issuer: MITR.issuer, subjectRegExp: ".*@redhat\\.com" })]).ok,
    ).toBe(true);
    expect(
      verifyLegacy(KEYLESS, [
        keyless({ issuerRegExp: "https://github\\.com/login/.*", subject: MITR.subject }),
      ]).ok,
    ).toBe(true);
  });

  it("refuses a Rekor key the root does not hold (a SET signed by another log key)", () => {
    const r = verifyLegacy(KEYLESS, [keyless(MITR, rootWithOtherRekorKey())]);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.detail).toMatch(/SET|log/);
  });

  it("refuses a changed integrated time, a missing SET, and a flipped payload bit", () => {
    const moved = verifyLegacy(KEYLESS, [keyless(MITR)], (s) =>
      changeSet(s.annotations, (set) => {
        const p = set.Payload as Record<string, number>;
        p.integratedTime = (p.integratedTime ?? 0) + 1;
      }),
    );
    expect(moved.ok).toBe(false);
    const unlogged = verifyLegacy(KEYLESS, [keyless(MITR)], (s) => {
      delete s.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION];
    });
    expect(unlogged).toMatchObject({ ok: false, detail: expect.stringContaining("no verified log entry") });
    const flipped = verifyLegacy(KEYLESS, [keyless(MITR)], (s) => {
      s.payload[10] = (s.payload[10] ?? 0) ^ 1;
    });
    expect(flipped.ok).toBe(false);
  });

  it("is not accepted by keys, nor by a project without keyless identities", () => {
    const r = verifyLegacy(KEYLESS, [key("cosign.pub", "optional")]);
    expect(r).toMatchObject({ ok: false, detail: expect.stringContaining("accepts no keyless identity") });
  });

  it("checks Fulcio extensions by name, exactly", () => {
    // The 2023 certificate predates the .1.8+ extensions: asking for one refuses it.
    const r = verifyLegacy(KEYLESS, [
      keyless({ ...MITR, extensions: { sourceRepositoryURI: "https://github.com/acme/app" } }),
    ]);
    expect(r.ok).toBe(false);
    expect(() => compileSignerIdentity({ name: "x", ...MITR, extensions: { nonsense: "1" } })).toThrow(
      /not a Fulcio extension/,
    );
  });
});

describe("containers/image internal/testdata: rekor-payload, rekor-sig, rekor-cert, rekor-set", () => {
  const dir = "containers-image/signature/internal/testdata";
  const payload = vectorBytes(`${dir}/rekor-payload`);
  const annotations = {
    [COSIGN_SIGNATURE_ANNOTATION]: vectorText(`${dir}/rekor-sig`).trim(),
    [COSIGN_CERTIFICATE_ANNOTATION]: vectorText(`${dir}/rekor-cert`),
    [COSIGN_REKOR_BUNDLE_ANNOTATION]: vectorText(`${dir}/rekor-set`).trim(),
  };
  const verifyWith = (authorities: Authority[], bytes = payload) => {
    const bundle = legacyLayerBundle(
      annotations[COSIGN_SIGNATURE_ANNOTATION],
      annotations,
      createHash("sha256").update(bytes).digest(),
    );
    if (typeof bundle === "string") throw new Error(bundle);
    return verifyAgainstAuthorities(bundle, bytes, authorities);
  };

  it("a keyless signature with its SET: verified for mitr@redhat.com under the public-good root", () => {
    expect(
      verifyWith([keyless({ issuer: "https://github.com/login/oauth", subject: "mitr@redhat.com" })]),
    ).toMatchObject({
      ok: true,
      certificate: { subjects: ["mitr@redhat.com"], issuer: "https://github.com/login/oauth" },
    });
  });

  it("refused for another subject, or for other bytes", () => {
    const mitr = keyless({ issuer: "https://github.com/login/oauth", subject: "mitr@redhat.com" });
    expect(
      verifyWith([keyless({ issuer: "https://github.com/login/oauth", subject: "x@redhat.com" })]).ok,
    ).toBe(false);
    expect(verifyWith([mitr], Buffer.concat([payload, Buffer.from(" ")])).ok).toBe(false);
  });
});

describe("keys and the transparency log", () => {
  it("a key signature with a Rekor SET verifies under required and optional", () => {
    expect(verifyLegacy(KEY_REKOR, [key("cosign2.pub", "required")])).toMatchObject({
      ok: true,
      logEntry: { logId: expect.stringMatching(/^c0d23d6a/) },
    });
    expect(verifyLegacy(KEY_REKOR, [key("cosign2.pub", "optional")]).ok).toBe(true);
  });

  it("a present SET is verified even when optional: another log key refuses it", () => {
    expect(verifyLegacy(KEY_REKOR, [key("cosign2.pub", "optional", rootWithOtherRekorKey())]).ok).toBe(false);
    expect(verifyLegacy(KEY_REKOR, [key("cosign2.pub", "required", rootWithOtherRekorKey())]).ok).toBe(false);
  });

  it("a signature made without Rekor is refused under required, with the fix in the message, and passes under optional", () => {
    const required = verifyLegacy(KEY_ONLY, [key("cosign.pub", "required")]);
    expect(required).toMatchObject({
      ok: false,
      detail: expect.stringContaining("no transparency-log entry, and the key requires one"),
    });
    expect(verifyLegacy(KEY_ONLY, [key("cosign.pub", "optional")]).ok).toBe(true);
  });

  it("a SET grafted from the keyless vector is refused (it logs another signature)", () => {
    const keylessSet = readDirSignature(KEYLESS).annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] ?? "";
    const r = verifyLegacy(KEY_ONLY, [key("cosign.pub", "optional")], (s) => {
      s.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] = keylessSet;
    });
    expect(r.ok).toBe(false);
  });

  it("the wrong key does not verify; the right one among several does", () => {
    expect(verifyLegacy(KEY_REKOR, [key("cosign.pub", "required")]).ok).toBe(false);
    expect(
      verifyLegacy(KEY_REKOR, [key("cosign.pub", "required"), key("cosign2.pub", "required")]),
    ).toMatchObject({
      ok: true,
      authority: { name: "cosign2.pub" },
    });
  });
});

describe("bundles pullgate cannot use, and the order keys are tried in", () => {
  const v03 = () =>
    bundleFromJSON(JSON.parse(vectorText(`${CONFORMANCE}/happy-path-v0.3/bundle.sigstore.json`)));
  const anyone = keyless(MITR);

  it("an RFC 3161 timestamp that does not parse makes an unusable bundle", () => {
    const bundle = v03();
    bundle.verificationMaterial.timestampVerificationData = {
      rfc3161Timestamps: [{ signedTimestamp: Buffer.from("junk") }],
    };
    expect(verifyAgainstAuthorities(bundle, vectorBytes(`${CONFORMANCE}/a.txt`), [anyone])).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/^unusable bundle: \S/),
    });
  });

  it("a certificate chain with no certificate carries no certificate", () => {
    const bundle = v03();
    bundle.verificationMaterial.content = {
      $case: "x509CertificateChain",
      x509CertificateChain: { certificates: [] },
    };
    expect(verifyAgainstAuthorities(bundle, vectorBytes(`${CONFORMANCE}/a.txt`), [anyone])).toEqual({
      ok: false,
      detail: "the bundle carries no certificate",
    });
  });

  it("a certificate that is not DER is unreadable", () => {
    const bundle = v03();
    bundle.verificationMaterial.content = {
      $case: "certificate",
      certificate: { rawBytes: Buffer.from("junk") },
    };
    expect(verifyAgainstAuthorities(bundle, vectorBytes(`${CONFORMANCE}/a.txt`), [anyone])).toMatchObject({
      ok: false,
      detail: expect.stringMatching(/^unreadable certificate: \S/),
    });
  });

  it("tries the key the bundle's hint names first, then the others, and says why each failed", () => {
    const bundle = bundleFromJSON(
      JSON.parse(vectorText(`${CONFORMANCE}/managed-key-happy-path/bundle.sigstore.json`)),
    );
    // The built-in root holds the TSA that timestamped this bundle: only the signature can fail.
    const builtIn = parseTrustRoot(
      "public-good",
      readFileSync(new URL("../../trust/public-good.trusted_root.json", import.meta.url)),
    );
    const [first, second] = [
      key("cosign.pub", "optional", builtIn),
      key("cosign2.pub", "optional", builtIn),
    ] as const;
    const hinted = (name: KeyAuthority) => {
      const b = bundleFromJSON(
        JSON.parse(vectorText(`${CONFORMANCE}/managed-key-happy-path/bundle.sigstore.json`)),
      );
      if (b.verificationMaterial.content.$case !== "publicKey") throw new Error("not a key bundle");
      b.verificationMaterial.content.publicKey.hint = keyHint(name.key);
      return b;
    };
    const artifact = vectorBytes(`${CONFORMANCE}/a.txt`);
    expect(bundle.verificationMaterial.content.$case).toBe("publicKey");
    expect(verifyAgainstAuthorities(hinted(second), artifact, [first, second])).toEqual({
      ok: false,
      detail:
        "cosign2.pub: the signature does not verify with this key; cosign.pub: the signature does not verify with this key",
    });
    expect(verifyAgainstAuthorities(hinted(first), artifact, [first, second])).toEqual({
      ok: false,
      detail:
        "cosign.pub: the signature does not verify with this key; cosign2.pub: the signature does not verify with this key",
    });
    // The hinted key moves to the front from the end of a longer list; the others keep their order.
    const third = key("some-rsa-key.pub", "optional", builtIn);
    const tried = verifyAgainstAuthorities(hinted(third), artifact, [first, second, third]);
    expect(!tried.ok && tried.detail.split("; ").map((f) => f.split(":")[0])).toEqual([
      "some-rsa-key.pub",
      "cosign.pub",
      "cosign2.pub",
    ]);
  });

  it("a key bundle the library cannot read (a timestamp that does not parse) is unusable", () => {
    const bundle = bundleFromJSON(
      JSON.parse(vectorText(`${CONFORMANCE}/managed-key-happy-path/bundle.sigstore.json`)),
    );
    bundle.verificationMaterial.timestampVerificationData = {
      rfc3161Timestamps: [{ signedTimestamp: Buffer.from("junk") }],
    };
    expect(
      verifyAgainstAuthorities(bundle, vectorBytes(`${CONFORMANCE}/a.txt`), [key("cosign.pub", "optional")]),
    ).toEqual({ ok: false, detail: expect.stringMatching(/^unusable bundle: \S/) });
  });

  it("describes a certificate without subject or issuer as such", () => {
    expect(
      describeCertificate({
        subjects: [],
        issuer: undefined,
        extensions: new Map(),
        usage: { digitalSignature: true, codeSigning: true },
      }),
    ).toBe("subject (none), issuer (none)");
  });
});

describe("Sigstore bundles", () => {
  const attestation = bundleFromJSON(JSON.parse(vectorText(ATTESTATION_BUNDLE)));
  const cody = { issuer: "https://github.com/login/oauth", subject: "cody@soyland.com" };

  it("a keyless DSSE bundle (cosign attest --new-bundle-format) verifies with its signer's identity", () => {
    const r = verifyAgainstAuthorities(attestation, undefined, [keyless(cody)]);
    expect(r).toMatchObject({ ok: true, logEntry: { logId: expect.any(String) } });
  });

  it("refuses it for another identity or under a root without its CA", () => {
    expect(
      verifyAgainstAuthorities(attestation, undefined, [keyless({ ...cody, subject: "x@soyland.com" })]).ok,
    ).toBe(false);
    const root = JSON.parse(vectorText(PGI_ROOT)) as { certificateAuthorities: unknown[] };
    root.certificateAuthorities = [];
    const noCa = parseTrustRoot("no-ca", JSON.stringify(root));
    const r = verifyAgainstAuthorities(attestation, undefined, [keyless(cody, noCa)]);
    expect(r).toMatchObject({ ok: false, detail: expect.stringContaining("does not chain") });
  });
});

describe("sigstore-conformance bundles (keyless beacon, Rekor v1 and v2, key with a TSA timestamp)", () => {
  const BEACON =
    "https://github.com/sigstore-conformance/extremely-dangerous-public-oidc-beacon/.github/workflows/extremely-dangerous-oidc-beacon.yml@refs/heads/main";
  const GH = "https://token.actions.githubusercontent.com";
  const bundleOf = (name: string) =>
    bundleFromJSON(JSON.parse(vectorText(`${CONFORMANCE}/${name}/bundle.sigstore.json`)));
  const builtIn = parseTrustRoot(
    "public-good",
    readFileSync(new URL("../../trust/public-good.trusted_root.json", import.meta.url)),
  );
  const artifact = vectorBytes(`${CONFORMANCE}/a.txt`);

  it("a keyless DSSE bundle in Rekor v1 (happy-path-intoto-in-dsse-v3) verifies for the beacon identity", () => {
    const r = verifyAgainstAuthorities(bundleOf("happy-path-intoto-in-dsse-v3"), undefined, [
      keyless({ issuer: GH, subject: BEACON }, builtIn),
    ]);
    expect(r.ok).toBe(true);
  });

  it("a Rekor v2 entry (no SET: inclusion proof and a TSA timestamp) verifies with its root's log and TSA", () => {
    const own = parseTrustRoot(
      "staging",
      vectorText(`${CONFORMANCE}/rekor2-dsse-happy-path/trusted_root.json`),
    );
    const bundle = bundleOf("rekor2-dsse-happy-path");
    const r = verifyAgainstAuthorities(bundle, undefined, [keyless({ issuer: GH, subject: BEACON }, own)]);
    expect(r).toMatchObject({ ok: true, logEntry: { integratedTime: undefined } });
    // The same bundle under a root without that log and TSA: refused.
    expect(
      verifyAgainstAuthorities(bundle, undefined, [keyless({ issuer: GH, subject: BEACON }, pgi)]).ok,
    ).toBe(false);
  });

  it("a message-signature bundle (happy-path-v0.3) verifies over its artifact", () => {
    const auth = [keyless({ issuer: GH, subject: BEACON }, builtIn)];
    expect(verifyAgainstAuthorities(bundleOf("happy-path-v0.3"), artifact, auth).ok).toBe(true);
    expect(
      verifyAgainstAuthorities(bundleOf("happy-path-v0.3"), Buffer.from("another artifact"), auth).ok,
    ).toBe(false);
  });

  it("a key bundle with a TSA timestamp verifies under the built-in root (which holds the TSA), not under an older one", () => {
    const k = parseTrustedKey({
      name: "managed",
      pem: vectorText(`${CONFORMANCE}/managed-key-happy-path/key.pub`),
    });
    const bundle = bundleOf("managed-key-happy-path");
    const authority = (root: TrustRoot): KeyAuthority => ({
      kind: "key",
      name: "managed",
      key: k,
      transparencyLog: "required",
      root,
    });
    expect(verifyAgainstAuthorities(bundle, artifact, [authority(builtIn)]).ok).toBe(true);
    // trusted_root_pgi.json predates the public-good TSA: a timestamp it cannot check refuses the bundle.
    expect(verifyAgainstAuthorities(bundle, artifact, [authority(pgi)]).ok).toBe(false);
  });

  it.each([
    "dsse-invalid-sig_fail",
    "dsse-mismatch-sig_fail",
    "set-invalid-signature_fail",
    "signature-mismatch_fail",
  ])("%s is refused", (name) => {
    const r = verifyAgainstAuthorities(bundleOf(name), artifact, [
      keyless({ issuer: GH, subject: BEACON }, builtIn),
    ]);
    expect(r.ok).toBe(false);
  });
});

describe("the log entry must name the signer (cosign's comparePublicKey; @sigstore/verify does not check it)", () => {
  const bodyOf = (path: string) => {
    const set = JSON.parse(readDirSignature(path).annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] ?? "{}");
    return Buffer.from(set.Payload.body, "base64");
  };

  it("reads the key of a hashedrekord entry, and the certificate of a keyless one", () => {
    const spki = vectorKey(`${FIXTURES}/cosign2.pub`).key.export({ type: "spki", format: "der" });
    expect(rekorBodySigners(bodyOf(KEY_REKOR)).map((d) => Buffer.from(d).toString("hex"))).toEqual([
      spki.toString("hex"),
    ]);
    const leaf = pem.toDER(readDirSignature(KEYLESS).annotations[COSIGN_CERTIFICATE_ANNOTATION] ?? "");
    expect(rekorBodySigners(bodyOf(KEYLESS)).map((d) => Buffer.from(d).toString("hex"))).toEqual([
      leaf.toString("hex"),
    ]);
  });

  it("names nobody for bodies it cannot read: then nothing binds", () => {
    expect(rekorBodySigners(Buffer.from("not json"))).toEqual([]);
    expect(rekorBodySigners(Buffer.from('{"kind":"rekord","apiVersion":"0.0.1","spec":{}}'))).toEqual([]);
  });
});

describe("why a signature does not count, in words", () => {
  const moveSet = (s: { annotations: Record<string, string> }) =>
    changeSet(s.annotations, (set) => {
      const p = set.Payload as Record<string, number>;
      p.integratedTime = (p.integratedTime ?? 0) + 1;
    });
  const flip = (s: { payload: Buffer }) => {
    s.payload[10] = (s.payload[10] ?? 0) ^ 1;
  };
  const dropSet = (s: { annotations: Record<string, string> }) => {
    delete s.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION];
  };
  const detailOf = (r: AuthorityVerification) => (r.ok ? "" : r.detail);

  it.each([
    [
      "a key's SET moved in time",
      KEY_REKOR,
      () => [key("cosign2.pub", "required")],
      moveSet,
      "cosign2.pub: the log entry's signed promise (SET) does not verify with any log of the trusted root (",
    ],
    [
      "a key's payload changed",
      KEY_REKOR,
      () => [key("cosign2.pub", "required")],
      flip,
      "cosign2.pub: the log entry is for another signature or payload (",
    ],
    [
      "a key that did not sign",
      KEY_REKOR,
      () => [key("cosign.pub", "required")],
      () => {},
      "cosign.pub: the signature does not verify with this key",
    ],
    [
      "a keyless SET moved in time",
      KEYLESS,
      () => [keyless(MITR)],
      moveSet,
      "ci (root public-good): the log entry's signed promise (SET) does not verify",
    ],
    [
      "a keyless payload changed",
      KEYLESS,
      () => [keyless(MITR)],
      flip,
      "ci (root public-good): the log entry is for another signature or payload",
    ],
    [
      "a keyless signature without its SET",
      KEYLESS,
      () => [keyless(MITR)],
      dropSet,
      "ci (root public-good): no verified log entry or timestamp (",
    ],
  ])("%s", (_, path, authorities, edit, expected) => {
    expect(detailOf(verifyLegacy(path, authorities(), edit))).toContain(expected);
  });

  it("names every key that was tried, and the accepted identities a certificate did not match", () => {
    const r = verifyLegacy(KEY_ONLY, [key("cosign2.pub", "optional"), key("cosign.pub", "required")]);
    expect(detailOf(r)).toMatch(/^cosign2\.pub: .*; cosign\.pub: no transparency-log entry/);
    const names = verifyLegacy(KEYLESS, [
      keyless({ ...MITR, subject: "a@b" }, pgi, "one"),
      keyless({ ...MITR, subject: "c@d" }, pgi, "two"),
    ]);
    expect(detailOf(names)).toContain("matches no accepted identity (one, two)");
  });

  it("a key signature among keyless identities and keys is judged by the keys only", () => {
    const r = verifyLegacy(KEY_REKOR, [keyless(MITR), key("cosign2.pub", "required")]);
    expect(r).toMatchObject({ ok: true, authority: { name: "cosign2.pub" } });
    expect(verifyLegacy(KEY_REKOR, [keyless(MITR)])).toMatchObject({
      ok: false,
      detail: "signed with a key, and the project trusts no key",
    });
  });
});

describe("trusted roots", () => {
  it("refuses what is not a trusted root", () => {
    expect(() => parseTrustRoot("x", "{}")).toThrow(/no transparency log and no certificate authority/);
    expect(() => parseTrustRoot("x", "not json")).toThrow(/not a Sigstore trusted root/);
  });

  it("fingerprints the exact bytes", () => {
    const again = parseTrustRoot("public-good", vectorText(PGI_ROOT));
    expect(again.sha256).toBe(pgi.sha256);
    expect(parseTrustRoot("public-good", `${vectorText(PGI_ROOT)}\n`).sha256).not.toBe(pgi.sha256);
  });
});

describe("parseTrustRoot", () => {
  it("takes text or bytes alike, and keeps the JSON for worker threads", () => {
    const text = vectorText(PGI_ROOT);
    const fromBytes = parseTrustRoot("pgi", Buffer.from(text));
    expect(fromBytes.sha256).toBe(parseTrustRoot("pgi", text).sha256);
    expect(fromBytes.json).toBe(text);
  });

  it("replaceWith takes another copy's content and keeps its own name (a re-read file)", () => {
    const root = parseTrustRoot("corp", vectorText(PGI_ROOT));
    const newer = parseTrustRoot(
      "corp",
      readFileSync(new URL("../../trust/public-good.trusted_root.json", import.meta.url)),
    );
    expect(root.sha256).not.toBe(newer.sha256);
    root.replaceWith(newer);
    expect(root).toMatchObject({ name: "corp", sha256: newer.sha256, json: newer.json });
    expect(root.material).toBe(newer.material);
  });

  it("accepts a root with only logs or only certificate authorities, and says why it refuses one", () => {
    const root = JSON.parse(vectorText(PGI_ROOT)) as Record<string, unknown[]>;
    expect(() =>
      parseTrustRoot("logs", JSON.stringify({ ...root, certificateAuthorities: [] })),
    ).not.toThrow();
    expect(() => parseTrustRoot("cas", JSON.stringify({ ...root, tlogs: [] }))).not.toThrow();
    const err = (() => {
      try {
        parseTrustRoot("x", "not json");
      } catch (e) {
        return e as Error & { code?: string };
      }
      return undefined;
    })();
    expect(err?.code).toBe("TRUST_ROOT_INVALID");
    expect(err?.message).toMatch(/^trusted root x: not a Sigstore trusted root \(.{1,161}\)$/);
  });
});
