import { createHash, createPublicKey, generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { CONFORMANCE, COSIGN_KEYS, FIXTURES, publicPemOf, vectorText } from "../../test/support/vectors.ts";
import { keyHint, orderKeysByHint, parseTrustedKey } from "./trusted-key.ts";
import { VerificationError, type VerificationErrorCode } from "./types.ts";

function codeOf(pem: string): VerificationErrorCode | "accepted" {
  try {
    parseTrustedKey({ name: "k", pem });
    return "accepted";
  } catch (err) {
    if (err instanceof VerificationError) return err.code;
    throw err;
  }
}

function spkiSha256(pem: string): string {
  const der = createPublicKey(pem).export({ type: "spki", format: "der" });
  return `sha256:${createHash("sha256").update(der).digest("hex")}`;
}

describe("parseTrustedKey: real public keys", () => {
  it.each([
    [`${FIXTURES}/cosign.pub`, "ecdsa-p256", 256],
    [`${FIXTURES}/cosign2.pub`, "ecdsa-p256", 256],
    [`${FIXTURES}/rekor.pub`, "ecdsa-p256", 256],
    [`${FIXTURES}/some-rsa-key.pub`, "rsa", 4096],
    [`${CONFORMANCE}/managed-key-happy-path/key.pub`, "ecdsa-p256", 256],
  ])("%s → %s/%d, fingerprint sha256 of the DER SPKI", (path, algorithm, bits) => {
    const pem = vectorText(path);
    const key = parseTrustedKey({ name: "vector", pem });
    expect(key).toMatchObject({ name: "vector", algorithm, bits });
    expect(key.fingerprint).toBe(spkiSha256(pem));
    expect(key.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
  });

  it("keyHint is the bundle hint cosign writes (conformance bundle's publicKey.hint)", () => {
    const key = parseTrustedKey({
      name: "k",
      pem: vectorText(`${CONFORMANCE}/managed-key-happy-path/key.pub`),
    });
    const bundle = JSON.parse(vectorText(`${CONFORMANCE}/managed-key-happy-path/bundle.sigstore.json`));
    expect(keyHint(key)).toBe(bundle.verificationMaterial.publicKey.hint);
  });

  it("orderKeysByHint puts the hinted key first and keeps the others", () => {
    const a = parseTrustedKey({ name: "a", pem: vectorText(`${FIXTURES}/cosign.pub`) });
    const b = parseTrustedKey({ name: "b", pem: vectorText(`${FIXTURES}/cosign2.pub`) });
    expect(orderKeysByHint([a, b], keyHint(b)).map((k) => k.name)).toEqual(["b", "a"]);
    expect(orderKeysByHint([a, b], "").map((k) => k.name)).toEqual(["a", "b"]);
    expect(orderKeysByHint([a, b], "bm8gc3VjaCBrZXk=").map((k) => k.name)).toEqual(["a", "b"]);
  });
});

describe("parseTrustedKey: cosign's key import vectors", () => {
  it.each([
    ["validecp256.pem", "ecdsa-p256", 256],
    ["validecp384.pem", "ecdsa-p384", 384],
    ["validecp521.pem", "ecdsa-p521", 521],
    ["validrsapkcs8.pem", "rsa", 2048],
    ["ed25519key.pem", "ed25519", 256],
  ])(
    "%s: the public half is accepted as %s/%d; the private key itself is KEY_UNSUPPORTED",
    (file, algorithm, bits) => {
      const privatePem = vectorText(`${COSIGN_KEYS}/${file}`);
      const key = parseTrustedKey({ name: file, pem: publicPemOf(privatePem) });
      expect(key).toMatchObject({ algorithm, bits });
      expect(codeOf(privatePem)).toBe("KEY_UNSUPPORTED");
    },
  );

  it.each(["pemcosignkey.pem", "pemsigstorekey.pem", "pemcosigneckey.pem"])(
    "%s (encrypted cosign private key) is not a public key: KEY_INVALID",
    (file) => {
      expect(codeOf(vectorText(`${COSIGN_KEYS}/${file}`))).toBe("KEY_INVALID");
    },
  );

  it("the conformance suite's corrupted key.pub is KEY_INVALID", () => {
    expect(codeOf(vectorText(`${CONFORMANCE}/managed-key-wrong-key_fail/key.pub`))).toBe("KEY_INVALID");
  });
});

describe("parseTrustedKey: what it refuses", () => {
  const spki = (key: import("node:crypto").KeyObject) =>
    key.export({ type: "spki", format: "pem" }).toString();

  it("other curves and key types are KEY_UNSUPPORTED", () => {
    expect(codeOf(spki(generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey))).toBe(
      "KEY_UNSUPPORTED",
    );
    expect(codeOf(spki(generateKeyPairSync("x25519").publicKey))).toBe("KEY_UNSUPPORTED");
    expect(codeOf(spki(generateKeyPairSync("ed448").publicKey))).toBe("KEY_UNSUPPORTED");
    expect(
      codeOf(spki(generateKeyPairSync("dsa", { modulusLength: 1024, divisorLength: 160 }).publicKey)),
    ).toBe("KEY_UNSUPPORTED");
    expect(codeOf(spki(generateKeyPairSync("rsa-pss", { modulusLength: 2048 }).publicKey))).toBe(
      "KEY_UNSUPPORTED",
    );
  });

  it("RSA under 2048 bits is KEY_TOO_WEAK; 2048 is enough", () => {
    expect(codeOf(spki(generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey))).toBe("KEY_TOO_WEAK");
    expect(codeOf(spki(generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey))).toBe("accepted");
  });

  it("a PKCS#1 RSA PUBLIC KEY is read, with the same SPKI fingerprint", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const pkcs1 = publicKey.export({ type: "pkcs1", format: "pem" }).toString();
    expect(pkcs1).toContain("BEGIN RSA PUBLIC KEY");
    expect(parseTrustedKey({ name: "k", pem: pkcs1 }).fingerprint).toBe(spkiSha256(spki(publicKey)));
  });

  it("certificates, garbage, empty input and several PEM blocks are KEY_INVALID", () => {
    const cosignPub = vectorText(`${FIXTURES}/cosign.pub`);
    expect(codeOf(vectorText(`${FIXTURES}/fulcio_v1.crt.pem`))).toBe("KEY_INVALID");
    expect(codeOf("")).toBe("KEY_INVALID");
    expect(codeOf("not a key")).toBe("KEY_INVALID");
    expect(codeOf(`${cosignPub}${vectorText(`${FIXTURES}/cosign2.pub`)}`)).toBe("KEY_INVALID");
    expect(codeOf("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")).toBe("KEY_INVALID");
    expect(codeOf("-----BEGIN PUBLIC KEY-----\n!!notbase64!!\n-----END PUBLIC KEY-----\n")).toBe(
      "KEY_INVALID",
    );
  });

  it("text around the one PEM block is allowed", () => {
    expect(codeOf(`# team key\n${vectorText(`${FIXTURES}/cosign.pub`)}\n`)).toBe("accepted");
  });
});
