import { createHash, createPublicKey, type KeyObject, timingSafeEqual, verify } from "node:crypto";
import { json } from "@sigstore/core";
import { decodeBase64 } from "./decode-base64.ts";
import { field } from "./json-field.ts";
import { parsePemBlocks } from "./pem.ts";

export type RekorSetResult =
  | { ok: true; integratedTime: number; logIndex: number; logID: string }
  | { ok: false; reason: string };

const utf8 = new TextDecoder("utf-8", { fatal: true });

/**
 * Offline check of a legacy layer's Rekor SET, the `dev.sigstore.cosign/bundle` annotation
 * (cosign-formats.md §1.6; cosign `VerifyBundle`/`VerifySET`):
 * 1. `Payload.logID` (hex sha256 of the log key's DER SPKI) selects one of `rekorKeys`;
 * 2. `SignedEntryTimestamp` verifies (SHA-256) over the RFC 8785 canonical JSON of
 *    {body, integratedTime, logID, logIndex};
 * 3. the entry body (kind hashedrekord or rekord, 0.0.1) binds this signature: its signature equals
 *    `signature`, its data hash equals sha256(`payload`), and, when `publicKeyOrCertPem` is given, its
 *    public key (PEM key or certificate) equals it. Without `publicKeyOrCertPem` the entry's key is
 *    not compared: the caller must then have verified `signature` with a key it trusts.
 * The integrated time it returns is what a keyless certificate's validity is checked against.
 */
export function verifyRekorSet(input: {
  bundleAnnotation: string;
  rekorKeys: readonly { pem: string }[];
  signature: Uint8Array;
  payload: Uint8Array;
  publicKeyOrCertPem?: string;
}): RekorSetResult {
  let parsed: unknown;
  try {
    parsed = JSON.parse(input.bundleAnnotation);
  } catch {
    return fail("bundle annotation is not JSON");
  }
  const set = field(parsed, "SignedEntryTimestamp");
  const payload = field(parsed, "Payload");
  const body = field(payload, "body");
  const integratedTime = field(payload, "integratedTime");
  const logIndex = field(payload, "logIndex");
  const logID = field(payload, "logID");
  if (
    typeof set !== "string" ||
    typeof body !== "string" ||
    typeof logID !== "string" ||
    !isCount(integratedTime) ||
    !isCount(logIndex)
  ) {
    return fail(
      "bundle annotation lacks SignedEntryTimestamp or Payload.{body,integratedTime,logIndex,logID}",
    );
  }
  const setBytes = decodeBase64(set);
  if (setBytes === undefined) return fail("SignedEntryTimestamp is not base64");

  const logKey = findLogKey(input.rekorKeys, logID);
  if (logKey === undefined) return fail(`no trusted Rekor key has logID ${logID.slice(0, 64)}`);
  const signed = Buffer.from(json.canonicalize({ body, integratedTime, logID, logIndex }), "utf8");
  if (!verifyWithLogKey(logKey, signed, setBytes)) return fail("SignedEntryTimestamp does not verify");

  const binding = checkBody(body, input.signature, input.payload, input.publicKeyOrCertPem);
  if (binding !== undefined) return fail(binding);
  return { ok: true, integratedTime, logIndex, logID };
}

function findLogKey(keys: readonly { pem: string }[], logID: string): KeyObject | undefined {
  for (const { pem } of keys) {
    try {
      const key = createPublicKey(pem);
      const der = key.export({ type: "spki", format: "der" });
      if (createHash("sha256").update(der).digest("hex") === logID.toLowerCase()) return key;
    } catch {
      // an unreadable log key cannot be the one named
    }
  }
  return undefined;
}

function verifyWithLogKey(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return key.asymmetricKeyType === "ed25519"
      ? verify(null, data, key, signature)
      : verify("sha256", data, key, signature);
  } catch {
    return false;
  }
}

/** Why the Rekor entry does not describe this signature, or undefined when it does. */
function checkBody(
  body: string,
  signature: Uint8Array,
  payload: Uint8Array,
  publicKeyOrCertPem: string | undefined,
): string | undefined {
  let entry: unknown;
  try {
    const bytes = decodeBase64(body);
    if (bytes === undefined) return "entry body is not base64";
    entry = JSON.parse(utf8.decode(bytes));
  } catch {
    return "entry body is not JSON";
  }
  const kind = field(entry, "kind");
  const apiVersion = field(entry, "apiVersion");
  if ((kind !== "hashedrekord" && kind !== "rekord") || apiVersion !== "0.0.1") {
    return `entry kind ${JSON.stringify(kind)} ${JSON.stringify(apiVersion)} is not a hashedrekord/rekord 0.0.1`;
  }
  const spec = field(entry, "spec");
  const hash = field(field(spec, "data"), "hash");
  if (field(hash, "algorithm") !== "sha256") return "entry data hash is not sha256";
  if (field(hash, "value") !== createHash("sha256").update(payload).digest("hex")) {
    return "entry data hash is not the payload's sha256";
  }
  const entrySignature = field(field(spec, "signature"), "content");
  const entrySigBytes = typeof entrySignature === "string" ? decodeBase64(entrySignature) : undefined;
  if (entrySigBytes === undefined || !bytesEqual(entrySigBytes, signature)) {
    return "entry signature is not this signature";
  }
  if (publicKeyOrCertPem === undefined) return undefined;
  const entryKey = field(field(field(spec, "signature"), "publicKey"), "content");
  const entryPemBytes = typeof entryKey === "string" ? decodeBase64(entryKey) : undefined;
  if (entryPemBytes === undefined) return "entry has no public key";
  let entryPem: string;
  try {
    entryPem = utf8.decode(entryPemBytes);
  } catch {
    return "entry public key is not PEM";
  }
  return sameKeyMaterial(entryPem, publicKeyOrCertPem) ? undefined : "entry public key is not the signer's";
}

/** Same certificate (DER) or same public key (DER SPKI); a key never matches a certificate. */
function sameKeyMaterial(a: string, b: string): boolean {
  const left = keyMaterial(a);
  const right = keyMaterial(b);
  return (
    left !== undefined && right !== undefined && left.kind === right.kind && bytesEqual(left.der, right.der)
  );
}

function keyMaterial(pem: string): { kind: "certificate" | "key"; der: Uint8Array } | undefined {
  const blocks = parsePemBlocks(pem);
  const [block] = blocks;
  if (block === undefined || blocks.length !== 1 || block.der === undefined) return undefined;
  if (block.label === "CERTIFICATE") return { kind: "certificate", der: block.der };
  if (block.label !== "PUBLIC KEY") return undefined;
  try {
    const key = createPublicKey({ key: Buffer.from(block.der), format: "der", type: "spki" });
    return { kind: "key", der: key.export({ type: "spki", format: "der" }) };
  } catch {
    return undefined;
  }
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

function isCount(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

function fail(reason: string): RekorSetResult {
  return { ok: false, reason };
}
