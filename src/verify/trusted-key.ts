import { createHash, createPublicKey, type KeyObject } from "node:crypto";
import { parsePemBlocks } from "./pem.ts";
import { type KeyAlgorithm, type TrustedKey, VerificationError } from "./types.ts";

/** Larger RSA keys only make verification slow; cosign generates 2048/3072/4096. */
const MAX_RSA_BITS = 8192;
const MIN_RSA_BITS = 2048;

const EC_CURVES: Readonly<Record<string, { algorithm: KeyAlgorithm; bits: number }>> = {
  prime256v1: { algorithm: "ecdsa-p256", bits: 256 },
  secp384r1: { algorithm: "ecdsa-p384", bits: 384 },
  secp521r1: { algorithm: "ecdsa-p521", bits: 521 },
};

/**
 * A PEM public key (`PUBLIC KEY` = SPKI, as cosign writes; `RSA PUBLIC KEY` = PKCS#1, which sigstore's
 * PEM loader also reads) → TrustedKey. Exactly one PEM block is allowed.
 * - KEY_INVALID: not a public key PEM: no or several PEM blocks, undecodable DER, certificates, and
 *   encrypted private keys (cosign's `ENCRYPTED SIGSTORE|COSIGN PRIVATE KEY`, PKCS#8 `ENCRYPTED PRIVATE KEY`).
 * - KEY_UNSUPPORTED: a readable key of a kind we do not accept: curves other than P-256/P-384/P-521,
 *   DSA, X25519, Ed448, RSA-PSS-only keys, RSA over 8192 bits, and unencrypted private keys (we never
 *   hold private key material: configure the public half).
 * - KEY_TOO_WEAK: RSA under 2048 bits.
 */
export function parseTrustedKey(input: { name: string; pem: string }): TrustedKey {
  const blocks = parsePemBlocks(input.pem);
  const [block] = blocks;
  if (block === undefined || blocks.length !== 1) {
    throw new VerificationError(
      "KEY_INVALID",
      `key ${input.name}: expected exactly one PEM block, found ${blocks.length}`,
    );
  }
  const key = toPublicKey(input.name, block.label, block.der);
  const shape = keyShape(input.name, key);
  const der = key.export({ type: "spki", format: "der" });
  return {
    name: input.name,
    fingerprint: `sha256:${createHash("sha256").update(der).digest("hex")}`,
    algorithm: shape.algorithm,
    bits: shape.bits,
    key,
  };
}

/**
 * The key hint cosign and sigstore-go put in a bundle's `verificationMaterial.publicKey.hint`:
 * base64(sha256(DER SPKI)), i.e. the fingerprint's bytes in base64.
 */
export function keyHint(key: TrustedKey): string {
  return Buffer.from(key.fingerprint.slice("sha256:".length), "hex").toString("base64");
}

/**
 * `keys` with those whose hint equals `hint` first (stable otherwise). A hint only orders the attempts:
 * every key is still verified, and a bundle whose hint names no trusted key is still tried with all.
 */
export function orderKeysByHint(keys: readonly TrustedKey[], hint: string): readonly TrustedKey[] {
  if (hint === "") return keys;
  return [...keys].sort((a, b) => Number(keyHint(b) === hint) - Number(keyHint(a) === hint));
}

function toPublicKey(name: string, label: string, der: Uint8Array | undefined): KeyObject {
  if (label === "PUBLIC KEY" || label === "RSA PUBLIC KEY") {
    if (der === undefined) throw new VerificationError("KEY_INVALID", `key ${name}: PEM body is not base64`);
    try {
      return createPublicKey({
        key: Buffer.from(der),
        format: "der",
        type: label === "PUBLIC KEY" ? "spki" : "pkcs1",
      });
    } catch {
      throw new VerificationError("KEY_INVALID", `key ${name}: not a valid ${label}`);
    }
  }
  if (label.endsWith("PRIVATE KEY") && !label.includes("ENCRYPTED")) {
    throw new VerificationError(
      "KEY_UNSUPPORTED",
      `key ${name}: a private key (${label}); configure its public key instead`,
    );
  }
  throw new VerificationError("KEY_INVALID", `key ${name}: a ${label} PEM is not a public key`);
}

function keyShape(name: string, key: KeyObject): { algorithm: KeyAlgorithm; bits: number } {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === "ec") {
    const curve = EC_CURVES[details.namedCurve ?? ""];
    if (curve === undefined) {
      throw new VerificationError(
        "KEY_UNSUPPORTED",
        `key ${name}: EC curve ${details.namedCurve ?? "(unnamed)"} is not supported (P-256, P-384, P-521 are)`,
      );
    }
    return curve;
  }
  if (type === "rsa") {
    const bits = details.modulusLength ?? 0;
    if (bits < MIN_RSA_BITS) {
      throw new VerificationError("KEY_TOO_WEAK", `key ${name}: RSA ${bits} bits is under ${MIN_RSA_BITS}`);
    }
    if (bits > MAX_RSA_BITS) {
      throw new VerificationError("KEY_UNSUPPORTED", `key ${name}: RSA ${bits} bits is over ${MAX_RSA_BITS}`);
    }
    return { algorithm: "rsa", bits };
  }
  if (type === "ed25519") return { algorithm: "ed25519", bits: 256 };
  throw new VerificationError("KEY_UNSUPPORTED", `key ${name}: ${type ?? "unknown"} keys are not supported`);
}
