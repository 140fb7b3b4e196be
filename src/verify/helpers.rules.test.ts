import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeBase64 } from "./decode-base64.ts";
import { namesDigest, readStatement } from "./in-toto-statement.ts";
import { parseCertificatePems, parsePemBlocks } from "./pem.ts";
import { quote } from "./quote.ts";
import { legacySignatureTag, referrersTagSchemaTag } from "./signature-tags.ts";
import { keyHint, orderKeysByHint, parseTrustedKey } from "./trusted-key.ts";
import { VerificationError } from "./types.ts";

const hex64 = "a".repeat(64);
const d256 = `sha256:${hex64}` as const;

describe("in-toto statements", () => {
  const statement = (v: unknown) => readStatement(Buffer.from(JSON.stringify(v)));
  const good = { _type: "https://in-toto.io/Statement/v1", predicateType: "p", subject: [] };

  it("reads a v1 or v0.1 statement", () => {
    expect(statement(good)).toEqual({ predicateType: "p", subjects: [] });
    expect(statement({ ...good, _type: "https://in-toto.io/Statement/v0.1" })).toEqual({
      predicateType: "p",
      subjects: [],
    });
  });

  it("says why a payload is not a statement", () => {
    expect(readStatement(Buffer.from("{"))).toBe("DSSE payload is not JSON");
    expect(readStatement(Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]))).toBe(
      "DSSE payload is not JSON",
    );
    expect(statement([])).toBe("in-toto statement is not an object");
    expect(statement(null)).toBe("in-toto statement is not an object");
    expect(statement({ ...good, _type: "x" })).toBe('in-toto _type "x"');
    expect(statement({ ...good, _type: 1 })).toBe("in-toto _type missing");
    expect(statement({ ...good, _type: undefined })).toBe("in-toto _type missing");
    expect(statement({ ...good, predicateType: 1 })).toBe("in-toto statement has no predicateType");
    expect(statement({ ...good, subject: {} })).toBe("in-toto statement has no subject list");
  });

  it("a subject names a digest only by its own algorithm and exact hex", () => {
    const s = (digest: unknown) => ({ name: "x", digest });
    expect(namesDigest([s({ sha256: hex64 })], d256)).toBe(true);
    expect(namesDigest([s({ sha512: hex64 }), s({ sha256: hex64 })], d256)).toBe(true);
    expect(namesDigest([s({ sha256: hex64 }), "junk", null], d256)).toBe(true);
    expect(namesDigest(["junk", s(null), s({ sha256: hex64 })], d256)).toBe(true);
    expect(namesDigest([s({ sha512: hex64 })], d256)).toBe(false);
    expect(namesDigest([s({ sha256: hex64.toUpperCase() })], d256)).toBe(false);
    expect(namesDigest([s({ sha256: `${hex64}0` })], d256)).toBe(false);
    expect(namesDigest([s("sha256")], d256)).toBe(false);
    // A subject that is not an object (here an array holding one) names nothing.
    expect(namesDigest([[s({ sha256: hex64 })]], d256)).toBe(false);
    expect(namesDigest([], d256)).toBe(false);
    // A digest with anything around it is no digest: it names nothing.
    for (const bad of [`${d256}x`, `x${d256}`, `${d256}\n`, "sha256:abc"]) {
      expect(namesDigest([s({ sha256: hex64 })], bad as typeof d256), bad).toBe(false);
    }
  });
});

describe("quote", () => {
  it("JSON-quotes, bounded to max characters", () => {
    expect(quote('a"b\n')).toBe('"a\\"b\\n"');
    expect(quote("x".repeat(80))).toBe(JSON.stringify("x".repeat(80)));
    expect(quote("x".repeat(81))).toBe(JSON.stringify(`${"x".repeat(80)}…`));
    expect(quote("abcdef", 3)).toBe('"abc…"');
    expect(quote("abc", 3)).toBe('"abc"');
  });
});

describe("signature tags", () => {
  it("derive from exact digests only", () => {
    expect(legacySignatureTag(d256)).toBe(`sha256-${hex64}.sig`);
    expect(referrersTagSchemaTag(`sha512:${"b".repeat(128)}`)).toBe(`sha512-${"b".repeat(64)}`);
    for (const bad of [`${d256}x`, `x${d256}`, `${d256}\n`, `sha256:${hex64}:${hex64}`]) {
      expect(() => legacySignatureTag(bad as typeof d256), bad).toThrow(TypeError);
      expect(() => referrersTagSchemaTag(bad as typeof d256), bad).toThrow(
        `not a digest: ${JSON.stringify(bad)}`,
      );
    }
    expect(() => legacySignatureTag(`x${"a".repeat(200)}` as typeof d256)).toThrow(
      `not a digest: ${JSON.stringify(`x${"a".repeat(139)}`)}`,
    );
  });
});

describe("trusted keys: messages and hint order", () => {
  const errorOf = (pem: string): VerificationError => {
    try {
      parseTrustedKey({ name: "k", pem });
    } catch (err) {
      if (err instanceof VerificationError) return err;
    }
    throw new Error("expected a VerificationError");
  };
  const ecPem = () =>
    generateKeyPairSync("ec", { namedCurve: "P-256" })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();

  it("says what is wrong with a key PEM", () => {
    expect(errorOf("").message).toBe("key k: expected exactly one PEM block, found 0");
    const two = ecPem() + ecPem();
    expect(errorOf(two)).toMatchObject({
      code: "KEY_INVALID",
      message: "key k: expected exactly one PEM block, found 2",
    });
    expect(errorOf("-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n")).toMatchObject({
      code: "KEY_INVALID",
      message: "key k: PEM body is not base64",
    });
    expect(errorOf("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n")).toMatchObject({
      code: "KEY_INVALID",
      message: "key k: not a valid PUBLIC KEY",
    });
    expect(errorOf("-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----\n").message).toBe(
      "key k: not a valid RSA PUBLIC KEY",
    );
    expect(errorOf("-----BEGIN EC PRIVATE KEY-----\nAAAA\n-----END EC PRIVATE KEY-----\n")).toMatchObject({
      code: "KEY_UNSUPPORTED",
      message: "key k: a private key (EC PRIVATE KEY); configure its public key instead",
    });
    expect(errorOf("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")).toMatchObject({
      code: "KEY_INVALID",
      message: "key k: a CERTIFICATE PEM is not a public key",
    });
    const secp256k1 = generateKeyPairSync("ec", { namedCurve: "secp256k1" })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    expect(errorOf(secp256k1)).toMatchObject({
      code: "KEY_UNSUPPORTED",
      message: "key k: EC curve secp256k1 is not supported (P-256, P-384, P-521 are)",
    });
    const x25519 = generateKeyPairSync("x25519").publicKey.export({ type: "spki", format: "pem" }).toString();
    expect(errorOf(x25519)).toMatchObject({
      code: "KEY_UNSUPPORTED",
      message: "key k: x25519 keys are not supported",
    });
    const rsa1024 = generateKeyPairSync("rsa", { modulusLength: 1024 })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString();
    expect(errorOf(rsa1024)).toMatchObject({
      code: "KEY_TOO_WEAK",
      message: "key k: RSA 1024 bits is under 2048",
    });
  });

  it("puts the keys a hint names first, keeps the order otherwise, and ignores an empty hint", () => {
    const [a, b, c] = [ecPem(), ecPem(), ecPem()].map((pem, i) =>
      parseTrustedKey({ name: `k${i}`, pem }),
    ) as [
      ReturnType<typeof parseTrustedKey>,
      ReturnType<typeof parseTrustedKey>,
      ReturnType<typeof parseTrustedKey>,
    ];
    const keys = [a, b, c];
    expect(orderKeysByHint(keys, keyHint(c)).map((k) => k.name)).toEqual(["k2", "k0", "k1"]);
    expect(orderKeysByHint(keys, keyHint(a)).map((k) => k.name)).toEqual(["k0", "k1", "k2"]);
    expect(orderKeysByHint(keys, "nothing").map((k) => k.name)).toEqual(["k0", "k1", "k2"]);
    expect(orderKeysByHint(keys, "")).toBe(keys);
    expect(orderKeysByHint(keys, keyHint(b))).not.toBe(keys);
  });
});

describe("PEM and base64", () => {
  it("decodes only standard, padded base64 (line breaks dropped)", () => {
    expect(decodeBase64("QUJD")).toEqual(new Uint8Array([0x41, 0x42, 0x43]));
    expect(decodeBase64("QUI=")).toEqual(new Uint8Array([0x41, 0x42]));
    expect(decodeBase64("QQ==")).toEqual(new Uint8Array([0x41]));
    expect(decodeBase64("QU\r\nJD")).toEqual(new Uint8Array([0x41, 0x42, 0x43]));
    expect(decodeBase64("")).toEqual(new Uint8Array());
    for (const bad of [
      "QUI",
      "QQ",
      "Q",
      "QUJDQ",
      "QUJD=",
      "QU=I",
      "QUJ-",
      "QUJ_",
      "QU JD",
      "QUI==",
      "=QUJ",
    ]) {
      expect(decodeBase64(bad), bad).toBeUndefined();
    }
  });

  it("reads PEM blocks whose END label matches, tolerating spaces and surrounding whitespace", () => {
    expect(parsePemBlocks("-----BEGIN PUBLIC KEY-----\nQUJD\n-----END CERTIFICATE-----\n")).toEqual([]);
    expect(parsePemBlocks("-----BEGIN X-----\n QU JD\t\n-----END X-----")).toEqual([
      { label: "X", der: new Uint8Array([0x41, 0x42, 0x43]) },
    ]);
    expect(parsePemBlocks("-----BEGIN X-----\n\fQUJD\u000b\n-----END X-----")).toEqual([
      { label: "X", der: new Uint8Array([0x41, 0x42, 0x43]) },
    ]);
    expect(parsePemBlocks("-----BEGIN X-----\n!!\n-----END X-----")).toEqual([
      { label: "X", der: undefined },
    ]);
  });

  it("takes only CERTIFICATE blocks as certificates, and fails on an undecodable one", () => {
    const key = "-----BEGIN PUBLIC KEY-----\nQUJD\n-----END PUBLIC KEY-----\n";
    const cert = "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n";
    expect(parseCertificatePems(key)).toEqual([]);
    expect(parseCertificatePems(key + cert)).toEqual([new Uint8Array([0x41, 0x42, 0x43])]);
    expect(parseCertificatePems(`${cert}-----BEGIN CERTIFICATE-----\n!!\n-----END CERTIFICATE-----\n`)).toBe(
      undefined,
    );
    expect(parseCertificatePems("-----BEGIN PUBLIC KEY-----\n!!\n-----END PUBLIC KEY-----\n")).toEqual([]);
  });

  it("names its errors", () => {
    expect(new VerificationError("KEY_INVALID", "m").name).toBe("VerificationError");
  });
});
