import { constants, type KeyObject, verify } from "node:crypto";
import { ed25519ph } from "@noble/curves/ed25519.js";
import type { TrustedKey } from "./types.ts";

const rawEd25519Keys = new WeakMap<KeyObject, Uint8Array>();

/**
 * Is `signature` a valid signature by `key` over `data`, as cosign makes them (cosign-formats.md §1.4)?
 * - ECDSA (ASN.1 DER signature): the curve's hash first (P-256→SHA-256, P-384→SHA-384, P-521→SHA-512),
 *   then SHA-256, which `cosign verify` and containers/image force for every curve.
 * - RSA: PKCS#1 v1.5 with SHA-256 (cosign never produces RSA-PSS).
 * - Ed25519: pure Ed25519 (older cosign, containers/image), then Ed25519ph (SHA-512 prehash, cosign's default).
 * Never throws: malformed keys or signatures are `false`.
 */
export function verifySignatureBytes(key: TrustedKey, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (key.algorithm) {
      case "ecdsa-p256":
        return verifyEcdsa(key.key, "sha256", data, signature);
      case "ecdsa-p384":
        return (
          verifyEcdsa(key.key, "sha384", data, signature) || verifyEcdsa(key.key, "sha256", data, signature)
        );
      case "ecdsa-p521":
        return (
          verifyEcdsa(key.key, "sha512", data, signature) || verifyEcdsa(key.key, "sha256", data, signature)
        );
      case "rsa":
        return verify("sha256", data, { key: key.key, padding: constants.RSA_PKCS1_PADDING }, signature);
      case "ed25519":
        if (signature.length !== 64) return false;
        return verify(null, data, key.key, signature) || verifyEd25519ph(key.key, data, signature);
      default:
        return unreachable(key.algorithm);
    }
  } catch {
    return false;
  }
}

function verifyEcdsa(key: KeyObject, hash: string, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    return verify(hash, data, { key, dsaEncoding: "der" }, signature);
  } catch {
    return false;
  }
}

function verifyEd25519ph(key: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  let raw = rawEd25519Keys.get(key);
  if (raw === undefined) {
    const jwk = key.export({ format: "jwk" });
    if (typeof jwk.x !== "string") return false;
    raw = new Uint8Array(Buffer.from(jwk.x, "base64url"));
    rawEd25519Keys.set(key, raw);
  }
  try {
    return ed25519ph.verify(signature, data, raw, { zip215: false });
  } catch {
    return false;
  }
}

function unreachable(value: never): never {
  throw new Error(`unhandled key algorithm ${String(value)}`);
}
