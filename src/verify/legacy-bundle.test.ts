import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FIXTURES, readDirSignature } from "../../test/support/vectors.ts";
import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_CHAIN_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_RFC3161_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
} from "./cosign-format.ts";
import { legacyLayerBundle } from "./legacy-bundle.ts";

// A legacy `.sig` layer as the v0.1 bundle cosign builds when it verifies with a trusted root.

const keyless = readDirSignature(`${FIXTURES}/dir-img-cosign-fulcio-rekor-valid/signature-1`);
const keyRekor = readDirSignature(`${FIXTURES}/dir-img-cosign-key-rekor-valid/signature-1`);
const keyOnly = readDirSignature(`${FIXTURES}/dir-img-cosign-valid/signature-1`);
const sha = (b: Uint8Array) => createHash("sha256").update(b).digest();

function convert(
  sig: { payload: Buffer; annotations: Record<string, string> },
  change: Record<string, string | undefined> = {},
) {
  const annotations = { ...sig.annotations };
  for (const [k, v] of Object.entries(change)) {
    if (v === undefined) delete annotations[k];
    else annotations[k] = v;
  }
  return legacyLayerBundle(annotations[COSIGN_SIGNATURE_ANNOTATION] ?? "", annotations, sha(sig.payload));
}

describe("legacyLayerBundle", () => {
  it("a keyless layer: the leaf and the chain's certificates, the SET as the entry's promise", () => {
    const bundle = convert(keyless);
    if (typeof bundle === "string") throw new Error(bundle);
    const material = bundle.verificationMaterial.content;
    expect(material.$case).toBe("x509CertificateChain");
    const chain = material.$case === "x509CertificateChain" ? material.x509CertificateChain.certificates : [];
    const inChain =
      (keyless.annotations[COSIGN_CHAIN_ANNOTATION] ?? "").match(/BEGIN CERTIFICATE/g)?.length ?? 0;
    expect(inChain).toBeGreaterThan(0);
    expect(chain).toHaveLength(1 + inChain);
    const [entry] = bundle.verificationMaterial.tlogEntries;
    const set = JSON.parse(keyless.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] ?? "{}");
    expect(entry?.kindVersion).toEqual({ kind: "hashedrekord", version: "0.0.1" });
    expect(String(entry?.integratedTime)).toBe(String(set.Payload.integratedTime));
    expect(String(entry?.logIndex)).toBe(String(set.Payload.logIndex));
    expect(Buffer.from(entry?.logId?.keyId ?? []).toString("hex")).toBe(set.Payload.logID);
    expect(
      bundle.content.$case === "messageSignature" &&
        Buffer.from(bundle.content.messageSignature.messageDigest?.digest ?? []).equals(sha(keyless.payload)),
    ).toBe(true);
  });

  it("an empty certificate annotation is a key signature, and an empty timestamp annotation no timestamp", () => {
    const bundle = convert(keyRekor, {
      [COSIGN_CERTIFICATE_ANNOTATION]: "",
      [COSIGN_RFC3161_ANNOTATION]: "",
    });
    if (typeof bundle === "string") throw new Error(bundle);
    expect(bundle.verificationMaterial.content).toEqual({ $case: "publicKey", publicKey: { hint: "" } });
    expect(bundle.verificationMaterial.timestampVerificationData).toBeUndefined();
  });

  it("a key layer: an empty key hint; with its SET one entry, without it none", () => {
    const logged = convert(keyRekor);
    const plain = convert(keyOnly);
    if (typeof logged === "string" || typeof plain === "string") throw new Error("not converted");
    expect(logged.verificationMaterial.content).toEqual({ $case: "publicKey", publicKey: { hint: "" } });
    expect(logged.verificationMaterial.tlogEntries).toHaveLength(1);
    expect(plain.verificationMaterial.tlogEntries).toHaveLength(0);
    expect(convert(keyRekor, { [COSIGN_REKOR_BUNDLE_ANNOTATION]: "" })).not.toBeTypeOf("string");
  });

  it("carries an RFC 3161 timestamp, and refuses one without its field", () => {
    const stamped = convert(keyRekor, {
      [COSIGN_RFC3161_ANNOTATION]: JSON.stringify({ SignedRFC3161Timestamp: "AAAA" }),
    });
    if (typeof stamped === "string") throw new Error(stamped);
    expect(stamped.verificationMaterial.timestampVerificationData?.rfc3161Timestamps).toHaveLength(1);
    expect(convert(keyRekor, { [COSIGN_RFC3161_ANNOTATION]: "{}" })).toBe(
      "rfc3161timestamp annotation has no SignedRFC3161Timestamp",
    );
    expect(convert(keyRekor, { [COSIGN_RFC3161_ANNOTATION]: "not json" })).toBe(
      "rfc3161timestamp annotation has no SignedRFC3161Timestamp",
    );
  });

  /** cosign's SET annotation as the spoilers below change it. */
  type SetAnnotation = { SignedEntryTimestamp: unknown; Payload: Record<string, unknown> };

  it.each([
    [
      "SignedEntryTimestamp",
      (s: SetAnnotation) => {
        s.SignedEntryTimestamp = 1;
      },
    ],
    [
      "body",
      (s: SetAnnotation) => {
        s.Payload.body = 1;
      },
    ],
    [
      "integratedTime",
      (s: SetAnnotation) => {
        s.Payload.integratedTime = "1";
      },
    ],
    [
      "logIndex",
      (s: SetAnnotation) => {
        s.Payload.logIndex = 1.5;
      },
    ],
    [
      "logID (not hex)",
      (s: SetAnnotation) => {
        s.Payload.logID = "zz".repeat(32);
      },
    ],
    [
      "logID (too long)",
      (s: SetAnnotation) => {
        s.Payload.logID = `${String(s.Payload.logID)}00`;
      },
    ],
    [
      "logID (a prefix)",
      (s: SetAnnotation) => {
        s.Payload.logID = `x${String(s.Payload.logID)}`;
      },
    ],
  ])("refuses a SET annotation with a malformed %s", (_, spoil) => {
    const set = JSON.parse(keyRekor.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] ?? "{}") as SetAnnotation;
    spoil(set);
    expect(convert(keyRekor, { [COSIGN_REKOR_BUNDLE_ANNOTATION]: JSON.stringify(set) })).toBe(
      "Rekor bundle annotation is malformed",
    );
  });

  it("refuses a SET whose body has no kind or version, and a certificate that is not PEM", () => {
    const set = JSON.parse(keyRekor.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] ?? "{}");
    for (const body of [{ apiVersion: "0.0.1" }, { kind: "hashedrekord" }, "not json"]) {
      set.Payload.body = Buffer.from(typeof body === "string" ? body : JSON.stringify(body)).toString(
        "base64",
      );
      expect(convert(keyRekor, { [COSIGN_REKOR_BUNDLE_ANNOTATION]: JSON.stringify(set) })).toBe(
        "Rekor entry body has no kind",
      );
    }
    expect(convert(keyless, { [COSIGN_CERTIFICATE_ANNOTATION]: "not a certificate" })).toBe(
      "certificate annotation is not one PEM certificate",
    );
    const leaf = keyless.annotations[COSIGN_CERTIFICATE_ANNOTATION] ?? "";
    expect(convert(keyless, { [COSIGN_CERTIFICATE_ANNOTATION]: `${leaf}\n${leaf}` })).toBe(
      "certificate annotation is not one PEM certificate",
    );
    expect(convert(keyless, { [COSIGN_SIGNATURE_ANNOTATION]: "" })).toMatch(/^not convertible to a bundle: /);
  });
});
