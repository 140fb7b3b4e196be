import { type Bundle, bundleFromJSON } from "@sigstore/bundle";
import { pem } from "@sigstore/core";
import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_CHAIN_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_RFC3161_ANNOTATION,
} from "./cosign-format.ts";
import { field } from "./json-field.ts";

const BUNDLE_V01 = "application/vnd.dev.sigstore.bundle+json;version=0.1";

/**
 * A legacy `.sig` layer (payload blob + annotations) as the Sigstore bundle cosign itself builds when
 * it verifies against a trusted root (`VerifyBundle`): a v0.1 message-signature bundle with the leaf
 * certificate (or an empty key hint), the Rekor SET as the entry's inclusion promise, and the RFC 3161
 * timestamp if any. v0.1, because v0.3 demands an inclusion proof a SET does not have. The chain
 * annotation is carried but never trusted: @sigstore/verify builds paths from the root's CAs only.
 * The payload itself is not in the bundle: it is the artifact handed to toSignedEntity. Returns why
 * not when the annotations are malformed.
 */
export function legacyLayerBundle(
  signatureBase64: string,
  annotations: Readonly<Record<string, string>>,
  payloadSha256: Uint8Array,
): Bundle | string {
  return toBundle(annotations, {
    messageSignature: {
      messageDigest: { algorithm: "SHA2_256", digest: Buffer.from(payloadSha256).toString("base64") },
      signature: signatureBase64,
    },
  });
}

/**
 * A legacy `.att` layer (its blob a DSSE envelope, cosign-formats.md §1.8) as a v0.1 bundle with
 * that envelope as its content; the verification material is read from the annotations as for a
 * `.sig` layer. Returns why not when the envelope or the annotations are malformed.
 */
export function legacyAttestationBundle(
  envelope: Uint8Array,
  annotations: Readonly<Record<string, string>>,
): Bundle | string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(utf8.decode(envelope));
  } catch {
    return "DSSE envelope is not JSON";
  }
  const payloadType = field(parsed, "payloadType");
  const payload = field(parsed, "payload");
  const signatures = field(parsed, "signatures");
  if (typeof payloadType !== "string" || typeof payload !== "string" || !Array.isArray(signatures))
    return "DSSE envelope lacks payloadType, payload or signatures";
  const [first] = signatures;
  const sig = field(first, "sig");
  // cosign writes one signature per envelope; a bundle carries exactly one.
  if (signatures.length !== 1 || typeof sig !== "string" || sig === "")
    return "DSSE envelope does not hold exactly one signature";
  const keyid = field(first, "keyid");
  return toBundle(annotations, {
    dsseEnvelope: {
      payloadType,
      payload,
      signatures: [{ sig, keyid: typeof keyid === "string" ? keyid : "" }],
    },
  });
}

const utf8 = new TextDecoder("utf-8", { fatal: true });

function toBundle(
  annotations: Readonly<Record<string, string>>,
  content: Record<string, unknown>,
): Bundle | string {
  const verificationMaterial: Record<string, unknown> = {};
  const certificatePem = annotations[COSIGN_CERTIFICATE_ANNOTATION];
  if (certificatePem !== undefined && certificatePem !== "") {
    const [leaf, ...extra] = splitPem(certificatePem);
    if (leaf === undefined || extra.length > 0) return "certificate annotation is not one PEM certificate";
    const certificates = [leaf, ...splitPem(annotations[COSIGN_CHAIN_ANNOTATION] ?? "")];
    verificationMaterial.x509CertificateChain = {
      certificates: certificates.map((c) => ({ rawBytes: pem.toDER(c).toString("base64") })),
    };
  } else {
    verificationMaterial.publicKey = { hint: "" };
  }
  const set = annotations[COSIGN_REKOR_BUNDLE_ANNOTATION];
  if (set !== undefined && set !== "") {
    const entry = tlogEntry(set);
    if (typeof entry === "string") return entry;
    verificationMaterial.tlogEntries = [entry];
  } else {
    verificationMaterial.tlogEntries = [];
  }
  const rfc3161 = annotations[COSIGN_RFC3161_ANNOTATION];
  if (rfc3161 !== undefined && rfc3161 !== "") {
    const signed = field(parseJson(rfc3161), "SignedRFC3161Timestamp");
    if (typeof signed !== "string") return "rfc3161timestamp annotation has no SignedRFC3161Timestamp";
    verificationMaterial.timestampVerificationData = { rfc3161Timestamps: [{ signedTimestamp: signed }] };
  }
  try {
    return bundleFromJSON({ mediaType: BUNDLE_V01, verificationMaterial, ...content });
  } catch (err) {
    return `not convertible to a bundle: ${(err as Error).message}`.slice(0, 200);
  }
}

/** cosign's `dev.sigstore.cosign/bundle` annotation: `{SignedEntryTimestamp, Payload{body, integratedTime, logIndex, logID}}`. */
function tlogEntry(annotation: string): Record<string, unknown> | string {
  const parsed = parseJson(annotation);
  const set = field(parsed, "SignedEntryTimestamp");
  const p = field(parsed, "Payload");
  const body = field(p, "body");
  const integratedTime = field(p, "integratedTime");
  const logIndex = field(p, "logIndex");
  const logID = field(p, "logID");
  if (
    typeof set !== "string" ||
    typeof body !== "string" ||
    !Number.isSafeInteger(integratedTime) ||
    !Number.isSafeInteger(logIndex) ||
    typeof logID !== "string" ||
    !/^[0-9a-f]{64}$/.test(logID)
  ) {
    return "Rekor bundle annotation is malformed";
  }
  const decoded = parseJson(Buffer.from(body, "base64").toString("utf8"));
  const kind = field(decoded, "kind");
  const version = field(decoded, "apiVersion");
  if (typeof kind !== "string" || typeof version !== "string") return "Rekor entry body has no kind";
  return {
    logIndex: String(logIndex),
    logId: { keyId: Buffer.from(logID, "hex").toString("base64") },
    kindVersion: { kind, version },
    integratedTime: String(integratedTime),
    inclusionPromise: { signedEntryTimestamp: set },
    canonicalizedBody: body,
  };
}

function splitPem(text: string): string[] {
  return text.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
