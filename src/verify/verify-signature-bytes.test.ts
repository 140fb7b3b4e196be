import { constants, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { ed25519ph } from "@noble/curves/ed25519.js";
import { describe, expect, it } from "vitest";
import { FIXTURES, readDirSignature, vectorKey } from "../../test/support/vectors.ts";
import { COSIGN_SIGNATURE_ANNOTATION } from "./cosign-format.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import type { TrustedKey } from "./types.ts";
import { verifySignatureBytes } from "./verify-signature-bytes.ts";

const data = Buffer.from('{"critical":{"type":"cosign container image signature"}}');

function pair(
  type: "ec" | "rsa" | "ed25519",
  options: { namedCurve?: string; modulusLength?: number } = {},
): { privateKey: KeyObject; trusted: TrustedKey } {
  const { privateKey, publicKey } =
    type === "ec"
      ? generateKeyPairSync("ec", { namedCurve: options.namedCurve ?? "P-256" })
      : type === "rsa"
        ? generateKeyPairSync("rsa", { modulusLength: options.modulusLength ?? 2048 })
        : generateKeyPairSync("ed25519");
  const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
  return { privateKey, trusted: parseTrustedKey({ name: type, pem }) };
}

describe("verifySignatureBytes: fresh keys, each algorithm", () => {
  it("ECDSA P-256 with SHA-256 (DER); not with SHA-384", () => {
    const { privateKey, trusted } = pair("ec", { namedCurve: "P-256" });
    expect(verifySignatureBytes(trusted, data, sign("sha256", data, privateKey))).toBe(true);
    expect(verifySignatureBytes(trusted, data, sign("sha384", data, privateKey))).toBe(false);
  });

  it("ECDSA P-384 with SHA-384 (curve-matched) and with SHA-256 (what cosign verify forces)", () => {
    const { privateKey, trusted } = pair("ec", { namedCurve: "P-384" });
    expect(verifySignatureBytes(trusted, data, sign("sha384", data, privateKey))).toBe(true);
    expect(verifySignatureBytes(trusted, data, sign("sha256", data, privateKey))).toBe(true);
    expect(verifySignatureBytes(trusted, data, sign("sha512", data, privateKey))).toBe(false);
  });

  it("ECDSA P-521 with SHA-512 and with SHA-256", () => {
    const { privateKey, trusted } = pair("ec", { namedCurve: "P-521" });
    expect(verifySignatureBytes(trusted, data, sign("sha512", data, privateKey))).toBe(true);
    expect(verifySignatureBytes(trusted, data, sign("sha256", data, privateKey))).toBe(true);
  });

  it("ECDSA signatures in IEEE P1363 (r||s) form are not cosign's: rejected", () => {
    const { privateKey, trusted } = pair("ec");
    const raw = sign("sha256", data, { key: privateKey, dsaEncoding: "ieee-p1363" });
    expect(verifySignatureBytes(trusted, data, raw)).toBe(false);
  });

  it("RSA PKCS#1 v1.5 SHA-256; RSA-PSS and SHA-512 are not what cosign makes", () => {
    const { privateKey, trusted } = pair("rsa");
    expect(verifySignatureBytes(trusted, data, sign("sha256", data, privateKey))).toBe(true);
    const pss = sign("sha256", data, { key: privateKey, padding: constants.RSA_PKCS1_PSS_PADDING });
    expect(verifySignatureBytes(trusted, data, pss)).toBe(false);
    expect(verifySignatureBytes(trusted, data, sign("sha512", data, privateKey))).toBe(false);
  });

  it("Ed25519 pure, and Ed25519ph (SHA-512 prehash, cosign's default for Ed25519 keys)", () => {
    const { privateKey, trusted } = pair("ed25519");
    expect(verifySignatureBytes(trusted, data, sign(null, data, privateKey))).toBe(true);
    const seed = Buffer.from(privateKey.export({ format: "jwk" }).d as string, "base64url");
    const ph = ed25519ph.sign(data, seed);
    expect(verifySignatureBytes(trusted, data, ph)).toBe(true);
    // the ph signature is not a pure one, and vice versa: both paths really ran
    expect(sign(null, data, privateKey).equals(Buffer.from(ph))).toBe(false);
    expect(verifySignatureBytes(trusted, Buffer.from("other"), ph)).toBe(false);
  });

  it("another key of the same kind does not verify", () => {
    for (const type of ["ec", "rsa", "ed25519"] as const) {
      const signer = pair(type);
      const other = pair(type);
      const signature = sign(type === "ed25519" ? null : "sha256", data, signer.privateKey);
      expect(verifySignatureBytes(other.trusted, data, signature)).toBe(false);
    }
  });

  it("never throws on garbage", () => {
    for (const type of ["ec", "rsa", "ed25519"] as const) {
      const { trusted } = pair(type);
      for (const garbage of [
        new Uint8Array(),
        randomBytes(1),
        randomBytes(64),
        randomBytes(512),
        randomBytes(10_000),
      ]) {
        expect(verifySignatureBytes(trusted, data, garbage)).toBe(false);
        expect(verifySignatureBytes(trusted, new Uint8Array(), garbage)).toBe(false);
      }
    }
  });
});

describe("verifySignatureBytes: the real cosign signature (dir-img-cosign-valid)", () => {
  const layer = readDirSignature(`${FIXTURES}/dir-img-cosign-valid/signature-1`);
  const signature = Buffer.from(layer.annotations[COSIGN_SIGNATURE_ANNOTATION] as string, "base64");

  it("verifies with cosign.pub over the exact payload bytes", () => {
    expect(verifySignatureBytes(vectorKey(`${FIXTURES}/cosign.pub`), layer.payload, signature)).toBe(true);
  });

  it("not with cosign2.pub", () => {
    expect(verifySignatureBytes(vectorKey(`${FIXTURES}/cosign2.pub`), layer.payload, signature)).toBe(false);
  });

  it("not over the payload with one bit flipped", () => {
    const flipped = Buffer.from(layer.payload);
    flipped[10] = (flipped[10] as number) ^ 0x01;
    expect(verifySignatureBytes(vectorKey(`${FIXTURES}/cosign.pub`), flipped, signature)).toBe(false);
  });
});

describe("verifySignatureBytes: every algorithm refuses what it must", () => {
  const other = Buffer.from("other data");

  it.each(["P-256", "P-384", "P-521"])(
    "ECDSA %s: a bad signature, another key's signature, other data",
    (namedCurve) => {
      const { privateKey, trusted } = pair("ec", { namedCurve });
      const stranger = pair("ec", { namedCurve });
      for (const hash of ["sha256", "sha384", "sha512"]) {
        const good = sign(hash, data, privateKey);
        const bad = Buffer.from(good);
        bad[bad.length - 1] = (bad[bad.length - 1] as number) ^ 0x01;
        expect(verifySignatureBytes(trusted, data, bad)).toBe(false);
        expect(verifySignatureBytes(trusted, other, good)).toBe(false);
        expect(verifySignatureBytes(trusted, data, sign(hash, data, stranger.privateKey))).toBe(false);
      }
    },
  );

  it("RSA: a bad signature, another key's signature, other data", () => {
    const { privateKey, trusted } = pair("rsa");
    const good = sign("sha256", data, privateKey);
    const bad = Buffer.from(good);
    bad[0] = (bad[0] as number) ^ 0x01;
    expect(verifySignatureBytes(trusted, data, bad)).toBe(false);
    expect(verifySignatureBytes(trusted, other, good)).toBe(false);
    expect(verifySignatureBytes(trusted, data, sign("sha256", data, pair("rsa").privateKey))).toBe(false);
  });

  it("Ed25519: a bad signature, a wrong-length one, other data (pure and prehashed)", () => {
    const { privateKey, trusted } = pair("ed25519");
    const pure = sign(null, data, privateKey);
    const seed = Buffer.from(privateKey.export({ format: "jwk" }).d as string, "base64url");
    const ph = Buffer.from(ed25519ph.sign(data, seed));
    for (const good of [pure, ph]) {
      const bad = Buffer.from(good);
      bad[5] = (bad[5] as number) ^ 0x01;
      expect(verifySignatureBytes(trusted, data, bad)).toBe(false);
      expect(verifySignatureBytes(trusted, other, good)).toBe(false);
      expect(verifySignatureBytes(trusted, data, Buffer.concat([good, Buffer.from([0])]))).toBe(false);
      expect(verifySignatureBytes(trusted, data, good.subarray(0, 63))).toBe(false);
    }
    // The raw key is cached per key object: a second verification with the same key still works.
    expect(verifySignatureBytes(trusted, data, ph)).toBe(true);
    expect(verifySignatureBytes(trusted, data, ph)).toBe(true);
  });

  it("an unknown algorithm is refused, not thrown", () => {
    const { trusted } = pair("ec");
    const weird = { ...trusted, algorithm: "dsa" } as unknown as TrustedKey;
    expect(verifySignatureBytes(weird, data, new Uint8Array(64))).toBe(false);
  });
});
