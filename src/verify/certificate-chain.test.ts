import { X509Certificate } from "node:crypto";
import { describe, expect, it } from "vitest";
import {
  ATTESTATION_BUNDLE,
  FIXTURES,
  PGI_ROOT,
  readDirSignature,
  vectorText,
} from "../../test/support/vectors.ts";
import { verifyCertificateChain } from "./certificate-chain.ts";
import {
  COSIGN_CERTIFICATE_ANNOTATION,
  COSIGN_CHAIN_ANNOTATION,
  COSIGN_REKOR_BUNDLE_ANNOTATION,
  COSIGN_SIGNATURE_ANNOTATION,
} from "./cosign-format.ts";
import { verifyRekorSet } from "./rekor-set.ts";
import { parseTrustedKey } from "./trusted-key.ts";
import { verifySignatureBytes } from "./verify-signature-bytes.ts";

const fulcioRoot = vectorText(`${FIXTURES}/fulcio_v1.crt.pem`);
const pkiRoot = vectorText(`${FIXTURES}/pki_root_crts.pem`);
const pkiIntermediate = vectorText(`${FIXTURES}/pki_intermediate_crts.pem`);

describe("verifyCertificateChain: dir-img-cosign-fulcio-rekor-valid (keyless, public-good Fulcio)", () => {
  const layer = readDirSignature(`${FIXTURES}/dir-img-cosign-fulcio-rekor-valid/signature-1`);
  const leafPem = layer.annotations[COSIGN_CERTIFICATE_ANNOTATION] as string;
  const chainPem = layer.annotations[COSIGN_CHAIN_ANNOTATION] as string;
  const integratedAt = new Date("2023-01-20T20:51:33Z");

  it("chains to fulcio_v1 at the Rekor integrated time; SAN mitr@redhat.com, issuer GitHub OAuth", () => {
    const result = verifyCertificateChain({
      leafPem,
      chainPem,
      trustedRootsPem: [fulcioRoot],
      at: integratedAt,
    });
    expect(result).toMatchObject({
      ok: true,
      subjectAlternativeName: "mitr@redhat.com",
      emails: ["mitr@redhat.com"],
      uris: [],
      issuer: "https://github.com/login/oauth",
      pathLength: 3,
    });
  });

  it("end to end: SET gives the time, the chain is valid then, the leaf key verifies the signature", () => {
    const signature = Buffer.from(layer.annotations[COSIGN_SIGNATURE_ANNOTATION] as string, "base64");
    const set = verifyRekorSet({
      bundleAnnotation: layer.annotations[COSIGN_REKOR_BUNDLE_ANNOTATION] as string,
      rekorKeys: [{ pem: vectorText(`${FIXTURES}/rekor.pub`) }],
      signature,
      payload: layer.payload,
      publicKeyOrCertPem: leafPem,
    });
    if (!set.ok) throw new Error(set.reason);
    const chain = verifyCertificateChain({
      leafPem,
      chainPem,
      trustedRootsPem: [fulcioRoot],
      at: new Date(set.integratedTime * 1000),
    });
    if (!chain.ok) throw new Error(chain.reason);
    const leafKey = parseTrustedKey({ name: chain.subjectAlternativeName ?? "", pem: chain.publicKeyPem });
    expect(verifySignatureBytes(leafKey, layer.payload, signature)).toBe(true);
  });

  it("is invalid at a time outside the leaf's 10-minute validity", () => {
    const { validFrom, validTo } = new X509Certificate(leafPem);
    for (const at of [
      new Date(new Date(validFrom).getTime() - 1000),
      new Date(new Date(validTo).getTime() + 1000),
      new Date("2024-06-01T00:00:00Z"),
    ]) {
      const result = verifyCertificateChain({ leafPem, chainPem, trustedRootsPem: [fulcioRoot], at });
      expect(result.ok).toBe(false);
      expect(result.ok === false && result.reason).toMatch(/^leaf not valid at/);
    }
  });

  it("needs the intermediate, and a trusted root it chains to", () => {
    expect(verifyCertificateChain({ leafPem, trustedRootsPem: [fulcioRoot], at: integratedAt }).ok).toBe(
      false,
    );
    expect(
      verifyCertificateChain({ leafPem, chainPem, trustedRootsPem: [pkiRoot], at: integratedAt }).ok,
    ).toBe(false);
    expect(verifyCertificateChain({ leafPem, chainPem, trustedRootsPem: [], at: integratedAt }).ok).toBe(
      false,
    );
  });

  it("the root shipped in the (untrusted) chain annotation is not trusted unless configured", () => {
    const chainRootOnly = verifyCertificateChain({
      leafPem,
      chainPem,
      trustedRootsPem: [pkiRoot, pkiIntermediate],
      at: integratedAt,
    });
    expect(chainRootOnly.ok).toBe(false);
  });

  it("a leaf cannot vouch for itself, and junk fails without throwing", () => {
    expect(
      verifyCertificateChain({ leafPem, chainPem, trustedRootsPem: [leafPem], at: integratedAt }).ok,
    ).toBe(false);
    expect(
      verifyCertificateChain({ leafPem: "junk", trustedRootsPem: [fulcioRoot], at: integratedAt }).ok,
    ).toBe(false);
    expect(
      verifyCertificateChain({
        leafPem: `${leafPem}${leafPem}`,
        chainPem,
        trustedRootsPem: [fulcioRoot],
        at: integratedAt,
      }).ok,
    ).toBe(false);
    expect(
      verifyCertificateChain({
        leafPem: "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        trustedRootsPem: [fulcioRoot],
        at: integratedAt,
      }).ok,
    ).toBe(false);
  });
});

describe("verifyCertificateChain: internal/testdata rekor-cert with fulcio-chain", () => {
  it("chains to fulcio_v1 within its validity (SAN mitr@redhat.com)", () => {
    const leafPem = vectorText("containers-image/signature/internal/testdata/rekor-cert");
    const integrated = JSON.parse(vectorText("containers-image/signature/internal/testdata/rekor-set"))
      .Payload.integratedTime as number;
    const result = verifyCertificateChain({
      leafPem,
      chainPem: vectorText(`${FIXTURES}/fulcio-chain`),
      trustedRootsPem: [fulcioRoot],
      at: new Date(integrated * 1000),
    });
    expect(result).toMatchObject({ ok: true, subjectAlternativeName: "mitr@redhat.com" });
  });
});

describe("verifyCertificateChain: dir-img-cosign-pki-valid (private PKI)", () => {
  const layer = readDirSignature(`${FIXTURES}/dir-img-cosign-pki-valid/signature-1`);
  const leafPem = layer.annotations[COSIGN_CERTIFICATE_ANNOTATION] as string;
  const at = new Date("2025-06-01T00:00:00Z");

  it("chains to pki_root_crts through pki_intermediate_crts: SAN qiwan@redhat.com, no Fulcio issuer", () => {
    const result = verifyCertificateChain({
      leafPem,
      trustedRootsPem: [pkiRoot],
      trustedIntermediatesPem: [pkiIntermediate],
      at,
    });
    expect(result).toMatchObject({
      ok: true,
      subjectAlternativeName: "qiwan@redhat.com",
      emails: ["qiwan@redhat.com"],
      issuer: undefined,
    });
    if (!result.ok) return;
    const key = parseTrustedKey({ name: "pki", pem: result.publicKeyPem });
    const signature = Buffer.from(layer.annotations[COSIGN_SIGNATURE_ANNOTATION] as string, "base64");
    expect(verifySignatureBytes(key, layer.payload, signature)).toBe(true);
  });

  it("also with the intermediate from the chain annotation; not against the Fulcio root; not before issuance", () => {
    const chainPem = layer.annotations[COSIGN_CHAIN_ANNOTATION] as string;
    expect(verifyCertificateChain({ leafPem, chainPem, trustedRootsPem: [pkiRoot], at }).ok).toBe(true);
    expect(verifyCertificateChain({ leafPem, chainPem, trustedRootsPem: [fulcioRoot], at }).ok).toBe(false);
    expect(
      verifyCertificateChain({
        leafPem,
        chainPem,
        trustedRootsPem: [pkiRoot],
        at: new Date("2020-01-01T00:00:00Z"),
      }).ok,
    ).toBe(false);
  });
});

describe("verifyCertificateChain: the cosign attestation bundle's leaf against trusted_root_pgi.json", () => {
  it("chains to the public-good Fulcio CA at its integrated time; issuer from OID .1.8", () => {
    const bundle = JSON.parse(vectorText(ATTESTATION_BUNDLE));
    const root = JSON.parse(vectorText(PGI_ROOT));
    const toPem = (b64: string) => `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`;
    const caCerts: string[] = root.certificateAuthorities.flatMap(
      (ca: { certChain: { certificates: { rawBytes: string }[] } }) =>
        ca.certChain.certificates.map((c) => toPem(c.rawBytes)),
    );
    const leafPem = toPem(bundle.verificationMaterial.certificate.rawBytes);
    const at = new Date(Number(bundle.verificationMaterial.tlogEntries[0].integratedTime) * 1000);
    // the trusted root lists intermediate and root per CA: the self-signed ones are the anchors
    const selfSigned = caCerts.filter((pem) =>
      new X509Certificate(pem).checkIssued(new X509Certificate(pem)),
    );
    const intermediates = caCerts.filter((pem) => !selfSigned.includes(pem));
    const result = verifyCertificateChain({
      leafPem,
      trustedRootsPem: selfSigned,
      trustedIntermediatesPem: intermediates,
      at,
    });
    expect(result).toMatchObject({
      ok: true,
      subjectAlternativeName: "cody@soyland.com",
      issuer: "https://github.com/login/oauth",
    });
    expect(
      verifyCertificateChain({
        leafPem,
        trustedRootsPem: selfSigned,
        trustedIntermediatesPem: intermediates,
        at: new Date(at.getTime() + 3_600_000),
      }).ok,
    ).toBe(false);
  });
});
