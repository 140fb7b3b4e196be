import { pem } from "@sigstore/core";
import { field } from "./json-field.ts";

/**
 * The signer material (DER: a SubjectPublicKeyInfo or a certificate) a Rekor entry body names, for
 * the kinds cosign and Sigstore clients write: hashedrekord 0.0.1 and 0.0.2 (Rekor v2), dsse 0.0.1
 * and 0.0.2, intoto 0.0.2. @sigstore/verify binds the body to the signature and digest but not to
 * the signer (cosign does, `comparePublicKey`): an entry logged for someone else's key must not
 * count. Empty when the body names no signer this reads (then nothing binds, and it does not count).
 */
export function rekorBodySigners(canonicalizedBody: Uint8Array): Uint8Array[] {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(canonicalizedBody).toString("utf8"));
  } catch {
    return [];
  }
  const spec = field(body, "spec");
  const out: Uint8Array[] = [];
  const fromPem = (base64Pem: unknown) => {
    if (typeof base64Pem !== "string") return;
    try {
      out.push(pem.toDER(Buffer.from(base64Pem, "base64").toString("utf8")));
    } catch {
      // not PEM: names nothing
    }
  };
  const fromVerifierV2 = (verifier: unknown) => {
    for (const kind of ["publicKey", "x509Certificate"]) {
      const raw = field(field(verifier, kind), "rawBytes");
      if (typeof raw === "string") out.push(Buffer.from(raw, "base64"));
    }
  };
  switch (`${field(body, "kind")}/${field(body, "apiVersion")}`) {
    case "hashedrekord/0.0.1":
      fromPem(field(field(field(spec, "signature"), "publicKey"), "content"));
      break;
    case "hashedrekord/0.0.2":
      fromVerifierV2(field(field(field(spec, "hashedRekordV002"), "signature"), "verifier"));
      break;
    case "dsse/0.0.1":
      for (const s of arrayOf(field(spec, "signatures"))) fromPem(field(s, "verifier"));
      break;
    case "dsse/0.0.2":
      for (const s of arrayOf(field(field(spec, "dsseV002"), "signatures")))
        fromVerifierV2(field(s, "verifier"));
      break;
    case "intoto/0.0.2":
      for (const s of arrayOf(field(field(field(spec, "content"), "envelope"), "signatures")))
        fromPem(field(s, "publicKey"));
      break;
  }
  return out;
}

function arrayOf(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

/**
 * The hash algorithm a Rekor body states for the digest it binds ("sha256", "sha384", "sha512";
 * Rekor v2's "SHA2_256" read alike), for the kinds rekorBodySigners reads. @sigstore/verify compares
 * the digest's value with the bundle's and ignores the algorithm beside it: a body stating another
 * algorithm over the same bytes must not count. Undefined when the body states none this reads.
 */
export function rekorBodyHashAlgorithm(canonicalizedBody: Uint8Array): string | undefined {
  let body: unknown;
  try {
    body = JSON.parse(Buffer.from(canonicalizedBody).toString("utf8"));
  } catch {
    return undefined;
  }
  const spec = field(body, "spec");
  let stated: unknown;
  switch (`${field(body, "kind")}/${field(body, "apiVersion")}`) {
    case "hashedrekord/0.0.1":
      stated = field(field(field(spec, "data"), "hash"), "algorithm");
      break;
    case "hashedrekord/0.0.2":
      stated = field(field(field(spec, "hashedRekordV002"), "data"), "algorithm");
      break;
    case "dsse/0.0.1":
      stated = field(field(spec, "payloadHash"), "algorithm");
      break;
    case "dsse/0.0.2":
      stated = field(field(field(spec, "dsseV002"), "payloadHash"), "algorithm");
      break;
    case "intoto/0.0.2":
      stated = field(field(field(spec, "content"), "payloadHash"), "algorithm");
      break;
  }
  return typeof stated === "string" ? (REKOR_V2_HASH_NAMES.get(stated) ?? stated) : undefined;
}

/** Rekor v2's names (protobuf enum) for the algorithms Rekor v1 bodies spell "sha256", "sha384", "sha512". */
const REKOR_V2_HASH_NAMES = new Map([
  ["SHA2_256", "sha256"],
  ["SHA2_384", "sha384"],
  ["SHA2_512", "sha512"],
]);
