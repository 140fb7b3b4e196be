import { createHash, generateKeyPairSync, type KeyObject, randomBytes, sign } from "node:crypto";
import { json } from "@sigstore/core";
import { describe, expect, it } from "vitest";
import { FIXTURES, vectorText } from "../../test/support/vectors.ts";
import { verifyRekorSet } from "./rekor-set.ts";

// verifyRekorSet against SETs made here with our own log key, so that every field of the
// annotation and of the entry body can be varied while the SET itself stays valid.

const spkiPem = (key: KeyObject) => key.export({ type: "spki", format: "pem" }).toString();
const spkiDer = (key: KeyObject) => key.export({ type: "spki", format: "der" });
const b64 = (bytes: Uint8Array | string) => Buffer.from(bytes).toString("base64");

const ecLog = generateKeyPairSync("ec", { namedCurve: "P-256" });
const edLog = generateKeyPairSync("ed25519");
const signer = generateKeyPairSync("ec", { namedCurve: "P-256" });
const signerPem = spkiPem(signer.publicKey);
const payload = Buffer.from('{"critical":{}}');
const signature = randomBytes(71);
const sha256hex = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

interface Entry {
  kind: unknown;
  apiVersion: unknown;
  spec: {
    data: { hash: { algorithm: string; value: string } };
    signature: { content: unknown; publicKey: { content: unknown } };
  };
}
/** For deleting a field of an Entry. */
const loose = (o: object) => o as Record<string, unknown>;

function entry(edit: (e: Entry) => void = () => {}): Entry {
  const e: Entry = {
    kind: "hashedrekord",
    apiVersion: "0.0.1",
    spec: {
      data: { hash: { algorithm: "sha256", value: sha256hex(payload) } },
      signature: { content: b64(signature), publicKey: { content: b64(signerPem) } },
    },
  };
  edit(e);
  return e;
}

interface SetOptions {
  body?: string;
  integratedTime?: unknown;
  logIndex?: unknown;
  logID?: unknown;
  log?: { privateKey: KeyObject; publicKey: KeyObject };
  set?: unknown;
}

function annotation(e: unknown, o: SetOptions = {}): string {
  const log = o.log ?? ecLog;
  const body = o.body ?? b64(JSON.stringify(e));
  const integratedTime = "integratedTime" in o ? o.integratedTime : 1_700_000_000;
  const logIndex = "logIndex" in o ? o.logIndex : 42;
  const logID = "logID" in o ? o.logID : sha256hex(spkiDer(log.publicKey));
  const signed = Buffer.from(json.canonicalize({ body, integratedTime, logID, logIndex } as never), "utf8");
  const isEd = log.publicKey.asymmetricKeyType === "ed25519";
  const set = "set" in o ? o.set : b64(sign(isEd ? null : "sha256", signed, log.privateKey));
  return JSON.stringify({ SignedEntryTimestamp: set, Payload: { body, integratedTime, logIndex, logID } });
}

/** `null`: no signer key given (the caller verified the signature with a key it trusts). */
const verifyWith = (bundleAnnotation: string, publicKeyOrCertPem: string | null = signerPem) =>
  verifyRekorSet({
    bundleAnnotation,
    rekorKeys: [{ pem: spkiPem(ecLog.publicKey) }, { pem: spkiPem(edLog.publicKey) }],
    signature,
    payload,
    ...(publicKeyOrCertPem === null ? {} : { publicKeyOrCertPem }),
  });
const reasonOf = (a: string, pem?: string) => {
  const r = verifyWith(a, pem);
  return r.ok ? "ok" : r.reason;
};

describe("verifyRekorSet: the annotation", () => {
  it("accepts a SET by an ECDSA or an Ed25519 log key and returns its time, index and log", () => {
    expect(verifyWith(annotation(entry()))).toEqual({
      ok: true,
      integratedTime: 1_700_000_000,
      logIndex: 42,
      logID: sha256hex(spkiDer(ecLog.publicKey)),
    });
    expect(verifyWith(annotation(entry(), { log: edLog }))).toMatchObject({
      ok: true,
      logID: sha256hex(spkiDer(edLog.publicKey)),
    });
    expect(verifyWith(annotation(entry(), { integratedTime: 0, logIndex: 0 }))).toMatchObject({
      ok: true,
      integratedTime: 0,
      logIndex: 0,
    });
  });

  it("refuses a SET by one log key presented under the other's logID", () => {
    const swapped = annotation(entry(), { log: edLog, logID: sha256hex(spkiDer(ecLog.publicKey)) });
    expect(reasonOf(swapped)).toBe("SignedEntryTimestamp does not verify");
  });

  it("refuses an annotation that is not JSON", () => {
    expect(reasonOf("{")).toBe("bundle annotation is not JSON");
  });

  it.each<[string, SetOptions]>([
    ["SignedEntryTimestamp not a string", { set: 1 }],
    ["body not a string", { body: 1 as never }],
    ["logID not a string", { logID: 1 }],
    ["integratedTime negative", { integratedTime: -1 }],
    ["integratedTime fractional", { integratedTime: 1.5 }],
    ["integratedTime a string", { integratedTime: "1" }],
    ["logIndex negative", { logIndex: -1 }],
    ["logIndex unsafe", { logIndex: 2 ** 53 }],
    ["logIndex missing", { logIndex: undefined }],
  ])("refuses %s", (_name, options) => {
    expect(reasonOf(annotation(entry(), options))).toBe(
      "bundle annotation lacks SignedEntryTimestamp or Payload.{body,integratedTime,logIndex,logID}",
    );
  });

  it("refuses a SET that is not base64, and names an unknown logID (bounded)", () => {
    expect(reasonOf(annotation(entry(), { set: "not base64!" }))).toBe("SignedEntryTimestamp is not base64");
    const unknown = "ab".repeat(40);
    expect(reasonOf(annotation(entry(), { logID: unknown }))).toBe(
      `no trusted Rekor key has logID ${unknown.slice(0, 64)}`,
    );
  });
});

describe("verifyRekorSet: the entry body binds signature, payload and key", () => {
  it.each<[string, string]>([
    ["not base64", "entry body is not base64"],
    [b64("not json"), "entry body is not JSON"],
    // JSON with an invalid UTF-8 byte inside a string: a lenient decoder would read it.
    [
      b64(
        Buffer.concat([Buffer.from('{"kind":"hashedrekord","x":"'), Buffer.from([0xff]), Buffer.from('"}')]),
      ),
      "entry body is not JSON",
    ],
  ])("refuses the body %j", (body, reason) => {
    expect(reasonOf(annotation(undefined, { body }))).toBe(reason);
  });

  it("accepts kind rekord too, and only apiVersion 0.0.1", () => {
    expect(reasonOf(annotation(entry((e) => (e.kind = "rekord"))))).toBe("ok");
    expect(reasonOf(annotation(entry((e) => (e.kind = "intoto"))))).toBe(
      'entry kind "intoto" "0.0.1" is not a hashedrekord/rekord 0.0.1',
    );
    expect(reasonOf(annotation(entry((e) => (e.apiVersion = "0.0.2"))))).toBe(
      'entry kind "hashedrekord" "0.0.2" is not a hashedrekord/rekord 0.0.1',
    );
    expect(reasonOf(annotation(entry((e) => delete loose(e).kind)))).toBe(
      'entry kind undefined "0.0.1" is not a hashedrekord/rekord 0.0.1',
    );
  });

  it("requires the payload's SHA-256", () => {
    expect(reasonOf(annotation(entry((e) => (e.spec.data.hash.algorithm = "sha512"))))).toBe(
      "entry data hash is not sha256",
    );
    expect(reasonOf(annotation(entry((e) => (e.spec.data.hash.value = sha256hex(Buffer.from("x"))))))).toBe(
      "entry data hash is not the payload's sha256",
    );
  });

  it("requires this exact signature", () => {
    const reason = "entry signature is not this signature";
    expect(reasonOf(annotation(entry((e) => (e.spec.signature.content = b64(randomBytes(71))))))).toBe(
      reason,
    );
    expect(reasonOf(annotation(entry((e) => (e.spec.signature.content = b64(signature.subarray(1))))))).toBe(
      reason,
    );
    expect(reasonOf(annotation(entry((e) => (e.spec.signature.content = 5))))).toBe(reason);
    expect(reasonOf(annotation(entry((e) => (e.spec.signature.content = "!!"))))).toBe(reason);
    expect(reasonOf(annotation(entry((e) => delete loose(e.spec.signature).content)))).toBe(reason);
  });

  it("requires the signer's key when one is given, and ignores the entry's key otherwise", () => {
    const other = spkiPem(generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey);
    const notSigner = "entry public key is not the signer's";
    expect(reasonOf(annotation(entry((e) => (e.spec.signature.publicKey.content = b64(other)))))).toBe(
      notSigner,
    );
    expect(verifyWith(annotation(entry((e) => delete loose(e.spec.signature).publicKey)), null).ok).toBe(
      true,
    );
    expect(reasonOf(annotation(entry((e) => delete loose(e.spec.signature).publicKey)))).toBe(
      "entry has no public key",
    );
    expect(reasonOf(annotation(entry((e) => (e.spec.signature.publicKey.content = 7))))).toBe(
      "entry has no public key",
    );
    expect(reasonOf(annotation(entry((e) => (e.spec.signature.publicKey.content = "!!"))))).toBe(
      "entry has no public key",
    );
    expect(
      reasonOf(annotation(entry((e) => (e.spec.signature.publicKey.content = b64(Buffer.from([0xff])))))),
    ).toBe("entry public key is not PEM");
  });

  it("compares key material, not PEM text, and only PUBLIC KEY or CERTIFICATE blocks", () => {
    const notSigner = "entry public key is not the signer's";
    const withKey = (pem: string) =>
      annotation(entry((e) => (e.spec.signature.publicKey.content = b64(pem))));
    // The same key, its PEM reflowed: the same key.
    const reflowed = signerPem.replace(/\n(?!-----)/g, "\r\n");
    expect(reasonOf(withKey(reflowed))).toBe("ok");
    // The same DER under another label is not a public key block.
    expect(reasonOf(withKey(signerPem.replaceAll("PUBLIC KEY", "EC PUBLIC KEY")))).toBe(notSigner);
    // Two blocks, or junk, on either side.
    expect(reasonOf(withKey(signerPem + signerPem))).toBe(notSigner);
    expect(reasonOf(withKey("junk"), "junk")).toBe(notSigner);
    expect(reasonOf(withKey(signerPem), "junk")).toBe(notSigner);
    expect(reasonOf(withKey(signerPem), signerPem + signerPem)).toBe(notSigner);
    const badBody = "-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n";
    expect(reasonOf(withKey(badBody), badBody)).toBe(notSigner);
    const notSpki = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n";
    expect(reasonOf(withKey(notSpki), notSpki)).toBe(notSigner);
    // A certificate matches only the same certificate, never a key.
    const cert = vectorText(`${FIXTURES}/fulcio_v1.crt.pem`);
    expect(reasonOf(withKey(cert), cert)).toBe("ok");
    expect(reasonOf(withKey(cert), signerPem)).toBe(notSigner);
    expect(reasonOf(withKey(signerPem), cert)).toBe(notSigner);
  });
});
