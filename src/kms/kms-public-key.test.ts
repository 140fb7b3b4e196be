import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { derToPem, toKmsPublicKey } from "./kms-public-key.ts";
import { KmsError } from "./types.ts";

const URI = "awskms:///alias/release";

function failure(run: () => unknown): KmsError {
  try {
    run();
  } catch (err) {
    if (err instanceof KmsError) return err;
    throw err;
  }
  throw new Error("expected a KmsError");
}

describe("toKmsPublicKey", () => {
  it("keeps the key's canonical SPKI PEM, whatever the PEM's line layout", () => {
    const { publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
    const pem = publicKey.export({ type: "spki", format: "pem" }).toString();
    const der = publicKey.export({ type: "spki", format: "der" });
    const oneLine = `-----BEGIN PUBLIC KEY-----\n${der.toString("base64")}\n-----END PUBLIC KEY-----`;
    for (const input of [pem, oneLine, derToPem(der), `\n${pem}\n`]) {
      const got = toKmsPublicKey(URI, input, ["ECDSA_SHA_256"]);
      expect(got.pem).toBe(pem);
      expect(got.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(got.signingAlgorithms).toEqual(["ECDSA_SHA_256"]);
    }
  });

  it("derToPem wraps base64 at 64 characters", () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    const der = publicKey.export({ type: "spki", format: "der" });
    expect(derToPem(der)).toBe(publicKey.export({ type: "spki", format: "pem" }).toString());
  });

  it("BAD_RESPONSE for what is no public key; WRONG_KEY for keys verify/ refuses; never echoes key material", () => {
    expect(failure(() => toKmsPublicKey(URI, "not a pem", [])).code).toBe("BAD_RESPONSE");
    expect(failure(() => toKmsPublicKey(URI, "x".repeat(20_000), [])).code).toBe("BAD_RESPONSE");
    const twoBlocks = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .publicKey.export({ type: "spki", format: "pem" })
      .toString()
      .repeat(2);
    expect(failure(() => toKmsPublicKey(URI, twoBlocks, [])).code).toBe("BAD_RESPONSE");

    const k256 = generateKeyPairSync("ec", { namedCurve: "secp256k1" }).publicKey;
    const curve = failure(() =>
      toKmsPublicKey(URI, k256.export({ type: "spki", format: "pem" }).toString(), []),
    );
    expect(curve.code).toBe("WRONG_KEY");
    expect(curve.message).toMatch(
      /^awskms:\/\/\/alias\/release: the KMS returned a key pullgate cannot use: EC curve/,
    );

    const weak = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey;
    expect(
      failure(() => toKmsPublicKey(URI, weak.export({ type: "spki", format: "pem" }).toString(), [])).code,
    ).toBe("WRONG_KEY");

    const privatePem = generateKeyPairSync("ec", { namedCurve: "P-256" })
      .privateKey.export({ type: "pkcs8", format: "pem" })
      .toString();
    const priv = failure(() => toKmsPublicKey(URI, privatePem, []));
    expect(priv.code).toBe("WRONG_KEY");
    expect(priv.message).not.toContain(privatePem.split("\n")[1] as string);
  });
});
