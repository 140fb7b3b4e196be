import { createHash } from "node:crypto";
import { type Bundle, bundleFromJSON } from "@sigstore/bundle";
import { HashAlgorithm, TrustedRoot } from "@sigstore/protobuf-specs";
import {
  type SignedEntity,
  type Signer,
  toSignedEntity,
  toTrustMaterial,
  type VerificationPolicy,
  Verifier,
} from "@sigstore/verify";
import { IN_TOTO_PAYLOAD_TYPE } from "./cosign-format.ts";
import { namesDigest, readStatement } from "./in-toto-statement.ts";
import { orderKeysByHint } from "./trusted-key.ts";
import type { DigestString, TrustedKey } from "./types.ts";

export type BundleVerificationFailure =
  /** not JSON, or not a Sigstore bundle @sigstore/bundle accepts */
  | "BUNDLE_INVALID"
  /** the trusted root JSON is unreadable */
  | "TRUSTED_ROOT_INVALID"
  /** the bundle is signed with a key and no public key was given */
  | "KEY_REQUIRED"
  /** a message-signature bundle signs artifact bytes: pass `artifact` */
  | "ARTIFACT_REQUIRED"
  /** verified, but for another artifact (DSSE subject or message digest) */
  | "ARTIFACT_MISMATCH"
  /** @sigstore/verify rejected it (tlog, SET, inclusion proof, timestamps, chain, SCT, signature) */
  | "VERIFICATION_FAILED"
  /** valid, but the certificate identity is not the one asked for */
  | "IDENTITY_MISMATCH";

export type BundleSigner =
  | { kind: "public-key"; key: string; keyFingerprint: string }
  | { kind: "certificate"; subjectAlternativeName: string | undefined; issuer: string | undefined };

export type BundleVerification =
  | { ok: true; content: "dsse-envelope" | "message-signature"; signer: BundleSigner }
  | {
      ok: false;
      code: BundleVerificationFailure;
      /** @sigstore/verify's own error code (e.g. TLOG_BODY_ERROR, TIMESTAMP_ERROR) when it rejected. */
      sigstoreCode?: string;
      reason: string;
    };

export interface BundleVerificationOptions {
  /** A Sigstore trusted root (trusted_root.json): Fulcio CAs, Rekor and CT log keys, TSAs. */
  trustedRootJson: string;
  /** Keys for a bundle with `verificationMaterial.publicKey`; tried hint-matching first, each verified. */
  publicKeys?: readonly TrustedKey[];
  /** The signed artifact: required for message signatures; for DSSE, a subject must name its sha256. */
  artifact?: Uint8Array;
  /** Instead of `artifact`, for DSSE: the digest a statement subject must name (e.g. an image digest). */
  artifactDigest?: DigestString;
  /** Certificate identity to require for keyless bundles (SAN exact or RegExp; OIDC issuer exact). */
  identity?: { subjectAlternativeName: string | RegExp; issuer?: string };
}

const HASHES: Readonly<Partial<Record<HashAlgorithm, string>>> = {
  [HashAlgorithm.HASH_ALGORITHM_UNSPECIFIED]: "sha256",
  [HashAlgorithm.SHA2_256]: "sha256",
  [HashAlgorithm.SHA2_384]: "sha384",
  [HashAlgorithm.SHA2_512]: "sha512",
};

/**
 * Full Sigstore bundle verification with @sigstore/verify (the reference implementation): signature,
 * transparency-log entries (SET, inclusion proof, checkpoint, body binding), RFC 3161 timestamps,
 * certificate chain and SCTs for keyless, then our artifact binding. @sigstore/verify needs at least
 * one verified timestamp (an integrated time with a SET, or a TSA timestamp) and checks certificates
 * and keys at those times only: it never reads the clock, so this stays pure.
 */
export function verifyBundleWithTrustRoot(
  bundleJson: string | Uint8Array,
  options: BundleVerificationOptions,
): BundleVerification {
  let bundle: Bundle;
  try {
    const text =
      typeof bundleJson === "string"
        ? bundleJson
        : new TextDecoder("utf-8", { fatal: true }).decode(bundleJson);
    bundle = bundleFromJSON(JSON.parse(text));
  } catch (err) {
    return fail("BUNDLE_INVALID", `not a Sigstore bundle: ${messageOf(err)}`);
  }
  let root: TrustedRoot;
  try {
    root = TrustedRoot.fromJSON(JSON.parse(options.trustedRootJson));
    toTrustMaterial(root);
  } catch (err) {
    return fail("TRUSTED_ROOT_INVALID", `unreadable trusted root: ${messageOf(err)}`);
  }

  let entity: SignedEntity;
  const content = bundle.content;
  switch (content.$case) {
    case "messageSignature": {
      if (options.artifact === undefined) {
        return fail("ARTIFACT_REQUIRED", "a message-signature bundle signs artifact bytes; none given");
      }
      const { messageDigest } = content.messageSignature;
      const hash = HASHES[messageDigest.algorithm];
      const actual = hash === undefined ? undefined : createHash(hash).update(options.artifact).digest();
      if (actual === undefined || !actual.equals(Buffer.from(messageDigest.digest))) {
        return fail("ARTIFACT_MISMATCH", "the bundle's message digest is not the artifact's");
      }
      entity = toSignedEntity(bundle, Buffer.from(options.artifact));
      break;
    }
    case "dsseEnvelope": {
      const mismatch = dsseArtifactMismatch(content.dsseEnvelope, options);
      if (mismatch !== undefined) return fail("ARTIFACT_MISMATCH", mismatch);
      entity = toSignedEntity(bundle);
      break;
    }
    default:
      return unreachable(content);
  }
  const kind = content.$case === "dsseEnvelope" ? "dsse-envelope" : "message-signature";

  const material = bundle.verificationMaterial.content;
  if (material.$case === "publicKey") {
    const keys = orderKeysByHint(options.publicKeys ?? [], material.publicKey.hint);
    let first: BundleVerification | undefined;
    for (const key of keys) {
      const trust = toTrustMaterial(root, () => ({ publicKey: key.key, validFor: () => true }));
      const outcome = runVerifier(trust, entity, undefined);
      if (outcome.ok) {
        return {
          ok: true,
          content: kind,
          signer: { kind: "public-key", key: key.name, keyFingerprint: key.fingerprint },
        };
      }
      first ??= outcome.failure;
    }
    return first ?? fail("KEY_REQUIRED", "the bundle is signed with a key and no public key was given");
  }

  const policy: VerificationPolicy | undefined =
    options.identity === undefined
      ? undefined
      : {
          subjectAlternativeName: options.identity.subjectAlternativeName,
          ...(options.identity.issuer === undefined
            ? {}
            : { extensions: { issuer: options.identity.issuer } }),
        };
  const outcome = runVerifier(toTrustMaterial(root), entity, policy);
  if (!outcome.ok) return outcome.failure;
  return {
    ok: true,
    content: kind,
    signer: {
      kind: "certificate",
      subjectAlternativeName: outcome.signer.identity?.subjectAlternativeName,
      issuer: outcome.signer.identity?.extensions?.issuer,
    },
  };
}

function runVerifier(
  trust: ReturnType<typeof toTrustMaterial>,
  entity: SignedEntity,
  policy: VerificationPolicy | undefined,
): { ok: true; signer: Signer } | { ok: false; failure: BundleVerification } {
  try {
    return { ok: true, signer: new Verifier(trust).verify(entity, policy) };
  } catch (err) {
    const sigstoreCode = codeOf(err);
    const code: BundleVerificationFailure =
      sigstoreCode === "UNTRUSTED_SIGNER_ERROR" ? "IDENTITY_MISMATCH" : "VERIFICATION_FAILED";
    const failure: BundleVerification = { ok: false, code, reason: messageOf(err) };
    if (sigstoreCode !== undefined) failure.sigstoreCode = sigstoreCode;
    return { ok: false, failure };
  }
}

/** For DSSE with an artifact or digest given: why the statement does not name it, or undefined. */
function dsseArtifactMismatch(
  envelope: { payloadType: string; payload: Buffer },
  options: BundleVerificationOptions,
): string | undefined {
  const digest =
    options.artifactDigest ??
    (options.artifact === undefined
      ? undefined
      : `sha256:${createHash("sha256").update(options.artifact).digest("hex")}`);
  if (digest === undefined) return undefined;
  if (envelope.payloadType !== IN_TOTO_PAYLOAD_TYPE) return `DSSE payloadType is ${envelope.payloadType}`;
  const statement = readStatement(envelope.payload);
  if (typeof statement === "string") return statement;
  if (!namesDigest(statement.subjects, digest)) return `no statement subject names ${digest}`;
  return undefined;
}

function codeOf(err: unknown): string | undefined {
  if (typeof err !== "object" || err === null || !("code" in err)) return undefined;
  return typeof err.code === "string" ? err.code : undefined;
}

function messageOf(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}

function fail(code: BundleVerificationFailure, reason: string): BundleVerification {
  return { ok: false, code, reason };
}

function unreachable(value: never): never {
  throw new Error(`unhandled bundle content ${JSON.stringify(value)}`);
}
