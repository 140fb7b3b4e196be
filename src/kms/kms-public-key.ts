import { parseTrustedKey, VerificationError } from "../verify/index.ts";
import { KmsError, type KmsPublicKey } from "./types.ts";

/** An RSA-8192 SPKI PEM is under 1.5 KiB; anything much larger is not a public key. */
const MAX_PEM_CHARS = 16 * 1024;

/**
 * What a KMS returned as a key's public half → the KmsPublicKey pullgate keeps, checked by the one key
 * parser (`parseTrustedKey`): exactly one PEM block holding a public key of a kind verify/ accepts.
 * The PEM kept is re-encoded from the key, so the same key always gives the same text.
 * - BAD_RESPONSE: not a public key PEM (garbage, a certificate, several blocks, too large);
 * - WRONG_KEY: a readable public key of a kind pullgate does not verify (curve, size, algorithm).
 */
export function toKmsPublicKey(uri: string, pem: string, signingAlgorithms: readonly string[]): KmsPublicKey {
  if (pem.length > MAX_PEM_CHARS) {
    throw new KmsError("BAD_RESPONSE", uri, `the KMS returned ${pem.length} characters, not a public key`);
  }
  try {
    const key = parseTrustedKey({ name: uri, pem });
    return {
      pem: key.key.export({ type: "spki", format: "pem" }).toString(),
      fingerprint: key.fingerprint,
      signingAlgorithms,
    };
  } catch (err) {
    if (!(err instanceof VerificationError)) throw err;
    // parseTrustedKey's words ("key NAME: …") are pullgate's own, about the key's shape: safe to show.
    const prefix = `key ${uri}: `;
    const why = err.message.startsWith(prefix) ? err.message.slice(prefix.length) : err.message;
    const code = err.code === "KEY_INVALID" ? "BAD_RESPONSE" : "WRONG_KEY";
    throw new KmsError(code, uri, `the KMS returned a key pullgate cannot use: ${why}`);
  }
}

/** DER SubjectPublicKeyInfo (AWS returns these) → PEM text, 64 base64 characters a line. */
export function derToPem(der: Uint8Array): string {
  const base64 = Buffer.from(der).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN PUBLIC KEY-----\n${lines.join("\n")}\n-----END PUBLIC KEY-----\n`;
}
