import type { Bundle, TransparencyLogEntry } from "@sigstore/bundle";
import { dsse, RFC3161Timestamp } from "@sigstore/core";
import { type SignedEntity, type TrustMaterial, toSignedEntity, Verifier } from "@sigstore/verify";
import { certificateFailure, codeOf, keyFailure, messageOf } from "./failure-words.ts";
import { quote } from "./quote.ts";
import { rekorBodyHashAlgorithm, rekorBodySigners } from "./rekor-body-signer.ts";
import {
  type CertificateSigner,
  certificateSigner,
  matchesIdentity,
  type SignerIdentity,
} from "./signer-identity.ts";
import type { TrustRoot } from "./trust-root.ts";
import { keyHint } from "./trusted-key.ts";
import type { TrustedKey } from "./types.ts";
import { verifySignatureBytes } from "./verify-signature-bytes.ts";

/** `required`: a verified log entry (SET or inclusion proof) naming the key, as `cosign verify --key`. */
export type TransparencyLogMode = "required" | "optional";

/** A public key a project trusts, with the log rule and the root whose Rekor keys check its entries. */
export interface KeyAuthority {
  kind: "key";
  name: string;
  key: TrustedKey;
  transparencyLog: TransparencyLogMode;
  root: TrustRoot;
  /**
   * The key's validity window (epoch ms, inclusive): a signature counts only when its verified log or
   * TSA times (without any: the time of judging) lie inside.
   */
  notBefore?: number | undefined;
  notAfter?: number | undefined;
}

/** A keyless signer identity a project accepts, with the root of its Fulcio CAs, CT logs, Rekor logs and TSAs. */
export interface KeylessAuthority {
  kind: "keyless";
  name: string;
  identity: SignerIdentity;
  root: TrustRoot;
}

export type Authority = KeyAuthority | KeylessAuthority;

/** The log entry a verified signature was found in (for the dry run and the audit record). */
export interface LogEntryInfo {
  /** hex sha256 of the log's public key (Rekor's log ID). */
  logId: string;
  logIndex: string;
  /** ISO 8601; undefined for entries without an integrated time (Rekor v2). */
  integratedTime: string | undefined;
}

export type AuthorityVerification =
  | {
      ok: true;
      authority: Authority;
      /** The certificate's signer (keyless), for reports. */
      certificate?: CertificateSigner;
      logEntry: LogEntryInfo | undefined;
    }
  | {
      ok: false;
      /** Keyless: the certificate's signer, when the signature verified but named nobody accepted. */
      certificate?: CertificateSigner;
      /** Why no authority accepts it, in words an operator can act on. */
      detail: string;
    };

/**
 * Does one of `authorities` stand behind this bundle? The cryptography is @sigstore/verify's
 * (signature, certificate path to the root's CAs at the logged time, SCTs, SET or inclusion proof,
 * timestamps, log body bound to signature and digest); on top of it: the log body must name the
 * signer, and a certificate's signer must match an accepted identity (anchored, any of them). The
 * payload's claims are the caller's to check. `artifact`: the signed bytes of a message signature.
 */
export function verifyAgainstAuthorities(
  bundle: Bundle,
  artifact: Uint8Array | undefined,
  authorities: readonly Authority[],
  /**
   * The time of judging (epoch ms): a key's validity window is checked against it when the bundle
   * has no verified time (verify/ reads no clock: without it, such a signature by a key with a
   * window does not count).
   */
  now?: number,
): AuthorityVerification {
  const material = bundle.verificationMaterial.content;
  if (material.$case === "publicKey") {
    const entity = signedEntity(bundle, artifact);
    if (typeof entity === "string") return { ok: false, detail: entity };
    return byKey(entity, bundle, artifact, material.publicKey.hint, authorities, now);
  }
  const leaf =
    material.$case === "certificate"
      ? material.certificate.rawBytes
      : material.x509CertificateChain.certificates[0]?.rawBytes;
  if (leaf === undefined) return { ok: false, detail: "the bundle carries no certificate" };
  let certificate: CertificateSigner;
  try {
    certificate = certificateSigner(leaf);
  } catch (err) {
    return { ok: false, detail: `unreadable certificate: ${messageOf(err)}` };
  }
  const entity = signedEntity(bundle, artifact);
  if (typeof entity === "string") return { ok: false, certificate, detail: entity };
  return byCertificate(entity, bundle, leaf, certificate, authorities);
}

/** The library's view of the bundle, or why it has none. */
function signedEntity(bundle: Bundle, artifact: Uint8Array | undefined): SignedEntity | string {
  try {
    return toSignedEntity(bundle, artifact === undefined ? undefined : Buffer.from(artifact));
  } catch (err) {
    return `unusable bundle: ${messageOf(err)}`;
  }
}

function byKey(
  entity: SignedEntity,
  bundle: Bundle,
  artifact: Uint8Array | undefined,
  hint: string,
  authorities: readonly Authority[],
  now: number | undefined,
): AuthorityVerification {
  const keys = authorities.filter((a): a is KeyAuthority => a.kind === "key");
  if (keys.length === 0) return { ok: false, detail: "signed with a key, and the project trusts no key" };
  // A hint only orders the attempts (cosign ignores it): every key is still tried.
  const ordered = [...keys].sort((a, b) => Number(keyHint(b.key) === hint) - Number(keyHint(a.key) === hint));
  const failures: string[] = [];
  const signed = signedContent(bundle, artifact);
  for (const authority of ordered) {
    const trust: TrustMaterial = {
      ...authority.root.material,
      publicKey: () => ({ publicKey: authority.key.key, validFor: () => true }),
    };
    const logged = authority.transparencyLog === "required";
    const outcome = run(trust, entity, {
      tlogThreshold: logged ? 1 : 0,
      timestampThreshold: logged ? 1 : 0,
      ctlogThreshold: 0,
    });
    // @sigstore/verify checks the signature last, and only with the key's default hash (SHA-256 for
    // every ECDSA curve): a P-384/SHA-384 signature fails there after the timestamps and log entries
    // passed. Then the signature is checked here, with the hashes cosign uses for the key.
    const signatureOnly =
      !outcome.ok &&
      outcome.code === "SIGNATURE_ERROR" &&
      signed !== undefined &&
      verifySignatureBytes(authority.key, signed.bytes, signed.signature);
    if (!outcome.ok && !signatureOnly) {
      failures.push(
        `${authority.name}: ${keyFailure(outcome.code, outcome.message, authority.transparencyLog === "required")}`,
      );
      continue;
    }
    const entries = bundle.verificationMaterial.tlogEntries;
    const spki = authority.key.key.export({ type: "spki", format: "der" });
    if (!entries.every((e) => namesSigner(e, spki))) {
      failures.push(`${authority.name}: the transparency-log entry names another key`);
      continue;
    }
    const hashProblem = entryHashProblem(bundle, entries);
    if (hashProblem !== undefined) {
      failures.push(`${authority.name}: ${hashProblem}`);
      continue;
    }
    const outside = validityProblem(authority, verifiedTimes(bundle), now);
    if (outside !== undefined) {
      failures.push(`${authority.name}: ${outside}`);
      continue;
    }
    return { ok: true, authority, logEntry: logEntryOf(entries[0]) };
  }
  return { ok: false, detail: failures.join("; ") };
}

function byCertificate(
  entity: SignedEntity,
  bundle: Bundle,
  leaf: Buffer,
  certificate: CertificateSigner,
  authorities: readonly Authority[],
): AuthorityVerification {
  const who = describeCertificate(certificate);
  if (!certificate.usage.codeSigning || !certificate.usage.digitalSignature) {
    const missing = !certificate.usage.codeSigning
      ? "extended key usage codeSigning"
      : "key usage digitalSignature";
    return {
      ok: false,
      certificate,
      detail: `signed keyless by ${who}, but the certificate is not for signing (no ${missing})`,
    };
  }
  const keyless = authorities.filter((a): a is KeylessAuthority => a.kind === "keyless");
  if (keyless.length === 0) {
    return {
      ok: false,
      certificate,
      detail: `signed keyless by ${who}, and the project accepts no keyless identity`,
    };
  }
  // Identity first: it is cheap, and a certificate nobody accepts needs no 7 ms of cryptography.
  const accepted = keyless.filter((a) => matchesIdentity(a.identity, certificate));
  if (accepted.length === 0) {
    const names = keyless.map((a) => a.name).join(", ");
    return {
      ok: false,
      certificate,
      detail: `signed keyless by ${who}, which matches no accepted identity (${names})`,
    };
  }
  const failures: string[] = [];
  const tried = new Set<TrustRoot>();
  for (const authority of accepted) {
    if (tried.has(authority.root)) continue;
    tried.add(authority.root);
    // Fulcio certificates: the path to the root's CAs at every verified timestamp (SET or TSA), every
    // embedded SCT against the root's CT logs, at least one log entry.
    const outcome = run(authority.root.material, entity, {
      tlogThreshold: 1,
      timestampThreshold: 1,
      ctlogThreshold: 1,
    });
    if (!outcome.ok) {
      failures.push(
        `${authority.name} (root ${authority.root.name}): ${certificateFailure(outcome.code, outcome.message)}`,
      );
      continue;
    }
    const entries = bundle.verificationMaterial.tlogEntries;
    if (!entries.every((e) => namesSigner(e, leaf))) {
      failures.push(`${authority.name}: the transparency-log entry names another certificate`);
      continue;
    }
    const hashProblem = entryHashProblem(bundle, entries);
    if (hashProblem !== undefined) {
      failures.push(`${authority.name}: ${hashProblem}`);
      continue;
    }
    return { ok: true, authority, certificate, logEntry: logEntryOf(entries[0]) };
  }
  return { ok: false, certificate, detail: `signed keyless by ${who}: ${failures.join("; ")}` };
}

type Outcome = { ok: true } | { ok: false; code: string | undefined; message: string };

/** The bytes a bundle's signature signs (the artifact, or DSSE's PAE) and the signature. */
function signedContent(
  bundle: Bundle,
  artifact: Uint8Array | undefined,
): { bytes: Uint8Array; signature: Uint8Array } | undefined {
  const content = bundle.content;
  if (content.$case === "dsseEnvelope") {
    const envelope = content.dsseEnvelope;
    const signature = envelope.signatures[0]?.sig;
    if (signature === undefined) return undefined;
    return { bytes: dsse.preAuthEncoding(envelope.payloadType, envelope.payload), signature };
  }
  return artifact === undefined
    ? undefined
    : { bytes: artifact, signature: content.messageSignature.signature };
}

function run(
  trust: TrustMaterial,
  entity: SignedEntity,
  thresholds: { tlogThreshold: number; timestampThreshold: number; ctlogThreshold: number },
): Outcome {
  try {
    new Verifier(trust, thresholds).verify(entity);
    return { ok: true };
  } catch (err) {
    // Any throw is "does not verify", library bugs included (a certificate with no timestamp throws a TypeError).
    return { ok: false, code: codeOf(err), message: messageOf(err) };
  }
}

/**
 * The times the library verified for this bundle: the log entries' integrated times (SET or
 * inclusion proof) and the RFC 3161 timestamps' signing times (checked against the root's TSAs).
 */
function verifiedTimes(bundle: Bundle): number[] {
  const times: number[] = [];
  for (const entry of bundle.verificationMaterial.tlogEntries) {
    const seconds = Number(entry.integratedTime);
    if (seconds > 0) times.push(seconds * 1000);
  }
  for (const ts of bundle.verificationMaterial.timestampVerificationData?.rfc3161Timestamps ?? []) {
    try {
      times.push(RFC3161Timestamp.parse(Buffer.from(ts.signedTimestamp)).signingTime.getTime());
    } catch {
      // The library verified every timestamp present: one that does not parse here never got this far.
    }
  }
  return times;
}

/** Why a key's signature falls outside the key's validity window, or undefined. */
export function validityProblem(
  key: Pick<KeyAuthority, "notBefore" | "notAfter">,
  verified: readonly number[],
  now: number | undefined,
): string | undefined {
  if (key.notBefore === undefined && key.notAfter === undefined) return undefined;
  const logged = verified.length > 0;
  if (!logged && now === undefined)
    return "no verified signing time to check the key's validity window against";
  const at = logged ? "signed at" : "no verified signing time, and now is";
  for (const t of logged ? verified : [now as number]) {
    if (key.notBefore !== undefined && t < key.notBefore)
      return `${at} ${iso(t)}, before the key's notBefore ${iso(key.notBefore)}`;
    if (key.notAfter !== undefined && t > key.notAfter)
      return `${at} ${iso(t)}, after the key's notAfter ${iso(key.notAfter)}`;
  }
  return undefined;
}

function iso(ms: number): string {
  return new Date(ms).toISOString().replace(".000Z", "Z");
}

/** A log entry as a bundle holds it (the protobuf type: fields optional). */
type LogEntryLike = Pick<TransparencyLogEntry, "canonicalizedBody" | "integratedTime" | "logIndex"> & {
  logId?: { keyId: Buffer } | undefined;
};

function namesSigner(entry: LogEntryLike, signer: Uint8Array): boolean {
  return rekorBodySigners(entry.canonicalizedBody).some((named) =>
    Buffer.from(named).equals(Buffer.from(signer)),
  );
}

/** HashAlgorithm (protobuf-specs) → the name a Rekor body uses. */
const DIGEST_ALGORITHMS: Record<number, string> = { 1: "sha256", 2: "sha384", 3: "sha512" };

/**
 * Why a log entry does not bind the digest the library compared it with: its body states another
 * hash algorithm (the library compares the value only). DSSE content is compared by its sha256.
 */
function entryHashProblem(bundle: Bundle, entries: readonly LogEntryLike[]): string | undefined {
  const content = bundle.content;
  const expected =
    content.$case === "dsseEnvelope"
      ? "sha256"
      : DIGEST_ALGORITHMS[content.messageSignature.messageDigest?.algorithm ?? 0];
  for (const entry of entries) {
    const stated = rekorBodyHashAlgorithm(entry.canonicalizedBody);
    if (expected === undefined || stated !== expected) {
      const named = stated === undefined ? "none" : quote(stated, 40);
      return `the transparency-log entry states hash algorithm ${named} for a ${expected ?? "unknown"} digest`;
    }
  }
  return undefined;
}

function logEntryOf(entry: LogEntryLike | undefined): LogEntryInfo | undefined {
  if (!entry?.logId) return undefined;
  const seconds = Number(entry.integratedTime);
  return {
    logId: Buffer.from(entry.logId.keyId).toString("hex"),
    logIndex: String(entry.logIndex),
    integratedTime: seconds > 0 ? new Date(seconds * 1000).toISOString() : undefined,
  };
}

/** "subject mitr@redhat.com, issuer https://github.com/login/oauth". */
export function describeCertificate(c: CertificateSigner): string {
  return `subject ${c.subjects[0] ?? "(none)"}, issuer ${c.issuer ?? "(none)"}`;
}
