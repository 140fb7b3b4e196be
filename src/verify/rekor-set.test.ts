import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { FIXTURES, readDirSignature, vectorBytes, vectorText } from "../../test/support/vectors.ts";
import { COSIGN_REKOR_BUNDLE_ANNOTATION, COSIGN_SIGNATURE_ANNOTATION } from "./cosign-format.ts";
import { verifyRekorSet } from "./rekor-set.ts";

const rekorPub = { pem: vectorText(`${FIXTURES}/rekor.pub`) };
const otherLogKey = {
  pem: generateKeyPairSync("ec", { namedCurve: "P-256" })
    .publicKey.export({ type: "spki", format: "pem" })
    .toString(),
};

function layerInput(name: string) {
  const layer = readDirSignature(`${FIXTURES}/${name}/signature-1`);
  return {
    bundleAnnotation: layer.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] as string,
    signature: Buffer.from(layer.annotations[COSIGN_SIGNATURE_ANNOTATION] as string, "base64"),
    payload: layer.payload,
    certificate: layer.annotations["dev.sigstore.cosign/certificate"],
  };
}

/** The annotation with Payload edited (the SET then no longer covers it). */
function editPayload(annotation: string, edit: (payload: Record<string, unknown>) => void): string {
  const parsed = JSON.parse(annotation);
  edit(parsed.Payload);
  return JSON.stringify(parsed);
}

describe("verifyRekorSet: dir-img-cosign-key-rekor-valid (key signature + public Rekor)", () => {
  const input = layerInput("dir-img-cosign-key-rekor-valid");
  const base = { ...input, rekorKeys: [rekorPub], publicKeyOrCertPem: vectorText(`${FIXTURES}/cosign2.pub`) };

  it("is valid with rekor.pub and binds signature, payload and key", () => {
    const result = verifyRekorSet(base);
    expect(result).toEqual({
      ok: true,
      integratedTime: JSON.parse(input.bundleAnnotation).Payload.integratedTime,
      logIndex: JSON.parse(input.bundleAnnotation).Payload.logIndex,
      logID: "c0d23d6ad406973f9559f3ba2d1ca01f84147d8ffc5b8445c224f98b9591801d",
    });
  });

  it("is invalid with another log key (no key has the SET's logID)", () => {
    const result = verifyRekorSet({ ...base, rekorKeys: [otherLogKey] });
    expect(result.ok).toBe(false);
    expect(result.ok === false && result.reason).toMatch(/logID/);
    expect(verifyRekorSet({ ...base, rekorKeys: [] }).ok).toBe(false);
  });

  it("the right log key among others is found by logID", () => {
    expect(verifyRekorSet({ ...base, rekorKeys: [otherLogKey, { pem: "junk" }, rekorPub] }).ok).toBe(true);
  });

  it("an edited integratedTime, logIndex or body breaks the SET", () => {
    for (const edit of [
      (p: Record<string, unknown>) => {
        p.integratedTime = (p.integratedTime as number) + 1;
      },
      (p: Record<string, unknown>) => {
        p.logIndex = (p.logIndex as number) - 1;
      },
      (p: Record<string, unknown>) => {
        p.body = `${(p.body as string).slice(0, -4)}AAAA`;
      },
    ]) {
      const result = verifyRekorSet({ ...base, bundleAnnotation: editPayload(input.bundleAnnotation, edit) });
      expect(result).toEqual({ ok: false, reason: "SignedEntryTimestamp does not verify" });
    }
  });

  it("a flipped SET signature bit fails", () => {
    const parsed = JSON.parse(input.bundleAnnotation);
    const set = Buffer.from(parsed.SignedEntryTimestamp, "base64");
    set[set.length - 3] = (set[set.length - 3] as number) ^ 0x04;
    parsed.SignedEntryTimestamp = set.toString("base64");
    expect(verifyRekorSet({ ...base, bundleAnnotation: JSON.stringify(parsed) })).toMatchObject({
      ok: false,
    });
  });

  it("the entry must describe this signature, this payload and this key", () => {
    const otherLayer = readDirSignature(`${FIXTURES}/dir-img-cosign-valid/signature-1`);
    const otherSignature = Buffer.from(
      otherLayer.annotations[COSIGN_SIGNATURE_ANNOTATION] as string,
      "base64",
    );
    expect(verifyRekorSet({ ...base, signature: otherSignature })).toEqual({
      ok: false,
      reason: "entry signature is not this signature",
    });
    expect(verifyRekorSet({ ...base, payload: otherLayer.payload })).toEqual({
      ok: false,
      reason: "entry data hash is not the payload's sha256",
    });
    expect(verifyRekorSet({ ...base, publicKeyOrCertPem: vectorText(`${FIXTURES}/cosign.pub`) })).toEqual({
      ok: false,
      reason: "entry public key is not the signer's",
    });
  });

  it("malformed annotations fail without throwing", () => {
    for (const bundleAnnotation of ["", "null", "{}", '{"SignedEntryTimestamp":"x","Payload":{}}', "[1,2]"]) {
      expect(verifyRekorSet({ ...base, bundleAnnotation }).ok).toBe(false);
    }
  });
});

describe("verifyRekorSet: keyless signatures (the entry holds the leaf certificate)", () => {
  it("dir-img-cosign-fulcio-rekor-valid: valid, integrated at 2023-01-20T20:51:33Z", () => {
    const input = layerInput("dir-img-cosign-fulcio-rekor-valid");
    const result = verifyRekorSet({
      ...input,
      rekorKeys: [rekorPub],
      publicKeyOrCertPem: input.certificate as string,
    });
    expect(result.ok).toBe(true);
    expect(result.ok && new Date(result.integratedTime * 1000).toISOString()).toBe(
      "2023-01-20T20:51:33.000Z",
    );
    // a key never matches a certificate entry
    expect(
      verifyRekorSet({
        ...input,
        rekorKeys: [rekorPub],
        publicKeyOrCertPem: vectorText(`${FIXTURES}/cosign.pub`),
      }),
    ).toMatchObject({ ok: false });
    expect(
      verifyRekorSet({ ...input, rekorKeys: [otherLogKey], publicKeyOrCertPem: input.certificate as string })
        .ok,
    ).toBe(false);
  });

  it("internal/testdata rekor-set with rekor-payload, rekor-sig and rekor-cert: valid", () => {
    const dir = "containers-image/signature/internal/testdata";
    const input = {
      bundleAnnotation: vectorText(`${dir}/rekor-set`),
      signature: Buffer.from(vectorText(`${dir}/rekor-sig`).trim(), "base64"),
      payload: vectorBytes(`${dir}/rekor-payload`),
      publicKeyOrCertPem: vectorText(`${dir}/rekor-cert`),
    };
    expect(verifyRekorSet({ ...input, rekorKeys: [{ pem: vectorText(`${dir}/rekor.pub`) }] })).toMatchObject({
      ok: true,
    });
    expect(verifyRekorSet({ ...input, rekorKeys: [otherLogKey] }).ok).toBe(false);
  });
});
