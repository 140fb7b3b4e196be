import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { rekorBodyHashAlgorithm, rekorBodySigners } from "./rekor-body-signer.ts";

// The signer a Rekor entry body names, for every kind cosign and Sigstore clients log.

const { publicKey } = generateKeyPairSync("ec", { namedCurve: "prime256v1" });
const spki = publicKey.export({ type: "spki", format: "der" });
const pemB64 = Buffer.from(publicKey.export({ type: "spki", format: "pem" }).toString()).toString("base64");
const body = (value: unknown) => Buffer.from(JSON.stringify(value));
const hex = (list: Uint8Array[]) => list.map((d) => Buffer.from(d).toString("hex"));

describe("rekorBodySigners", () => {
  it.each([
    [
      "hashedrekord 0.0.1",
      { kind: "hashedrekord", apiVersion: "0.0.1", spec: { signature: { publicKey: { content: pemB64 } } } },
    ],
    [
      "hashedrekord 0.0.2 (Rekor v2)",
      {
        kind: "hashedrekord",
        apiVersion: "0.0.2",
        spec: {
          hashedRekordV002: { signature: { verifier: { publicKey: { rawBytes: spki.toString("base64") } } } },
        },
      },
    ],
    ["dsse 0.0.1", { kind: "dsse", apiVersion: "0.0.1", spec: { signatures: [{ verifier: pemB64 }] } }],
    [
      "dsse 0.0.2 (Rekor v2)",
      {
        kind: "dsse",
        apiVersion: "0.0.2",
        spec: {
          dsseV002: {
            signatures: [{ verifier: { x509Certificate: { rawBytes: spki.toString("base64") } } }],
          },
        },
      },
    ],
    [
      "intoto 0.0.2",
      {
        kind: "intoto",
        apiVersion: "0.0.2",
        spec: { content: { envelope: { signatures: [{ publicKey: pemB64 }] } } },
      },
    ],
  ])("reads the signer of a %s entry", (_, value) => {
    expect(hex(rekorBodySigners(body(value)))).toEqual([spki.toString("hex")]);
  });

  it.each([
    ["not JSON", Buffer.from("{")],
    [
      "another kind",
      body({ kind: "rekord", apiVersion: "0.0.1", spec: { signature: { publicKey: { content: pemB64 } } } }),
    ],
    [
      "another version",
      body({
        kind: "hashedrekord",
        apiVersion: "0.0.3",
        spec: { signature: { publicKey: { content: pemB64 } } },
      }),
    ],
    [
      "a key that is not a string",
      body({ kind: "hashedrekord", apiVersion: "0.0.1", spec: { signature: { publicKey: { content: 7 } } } }),
    ],
    [
      "signatures that are not a list",
      body({ kind: "dsse", apiVersion: "0.0.1", spec: { signatures: { verifier: pemB64 } } }),
    ],
    [
      "a verifier of another kind",
      body({
        kind: "dsse",
        apiVersion: "0.0.2",
        spec: { dsseV002: { signatures: [{ verifier: { other: { rawBytes: "AA==" } } }] } },
      }),
    ],
  ])("names nobody for %s", (_, bytes) => {
    expect(rekorBodySigners(bytes)).toEqual([]);
  });
});

describe("rekorBodyHashAlgorithm", () => {
  it.each([
    [
      "hashedrekord 0.0.1",
      { kind: "hashedrekord", apiVersion: "0.0.1", spec: { data: { hash: { algorithm: "sha384" } } } },
      "sha384",
    ],
    [
      "hashedrekord 0.0.2 (Rekor v2's enum name)",
      {
        kind: "hashedrekord",
        apiVersion: "0.0.2",
        spec: { hashedRekordV002: { data: { algorithm: "SHA2_512" } } },
      },
      "sha512",
    ],
    [
      "dsse 0.0.1",
      { kind: "dsse", apiVersion: "0.0.1", spec: { payloadHash: { algorithm: "sha256" } } },
      "sha256",
    ],
    [
      "dsse 0.0.2",
      { kind: "dsse", apiVersion: "0.0.2", spec: { dsseV002: { payloadHash: { algorithm: "SHA2_256" } } } },
      "sha256",
    ],
    [
      "dsse 0.0.2 over SHA-384",
      { kind: "dsse", apiVersion: "0.0.2", spec: { dsseV002: { payloadHash: { algorithm: "SHA2_384" } } } },
      "sha384",
    ],
    [
      "intoto 0.0.2",
      { kind: "intoto", apiVersion: "0.0.2", spec: { content: { payloadHash: { algorithm: "sha512" } } } },
      "sha512",
    ],
    [
      "hashedrekord 0.0.1 with an algorithm Rekor does not name",
      { kind: "hashedrekord", apiVersion: "0.0.1", spec: { data: { hash: { algorithm: "SHA256" } } } },
      "SHA256",
    ],
  ])("reads the algorithm of a %s entry", (_, value, expected) => {
    expect(rekorBodyHashAlgorithm(body(value))).toBe(expected);
  });

  it.each([
    ["not JSON", Buffer.from("{")],
    [
      "another kind",
      body({ kind: "rekord", apiVersion: "0.0.1", spec: { data: { hash: { algorithm: "sha256" } } } }),
    ],
    [
      "another version",
      body({ kind: "dsse", apiVersion: "0.0.3", spec: { payloadHash: { algorithm: "sha256" } } }),
    ],
    ["no algorithm", body({ kind: "hashedrekord", apiVersion: "0.0.1", spec: { data: { hash: {} } } })],
    [
      "an algorithm that is not text",
      body({ kind: "dsse", apiVersion: "0.0.1", spec: { payloadHash: { algorithm: 1 } } }),
    ],
  ])("states none for %s", (_, bytes) => {
    expect(rekorBodyHashAlgorithm(bytes)).toBeUndefined();
  });

  it("reads a name that is an Object.prototype key as the text it is", () => {
    const stated = body({
      kind: "dsse",
      apiVersion: "0.0.1",
      spec: { payloadHash: { algorithm: "toString" } },
    });
    expect(rekorBodyHashAlgorithm(stated)).toBe("toString");
  });
});
