import { createPublicKey } from "node:crypto";
import { X509Certificate } from "@sigstore/core";
import { parseCertificatePems } from "./pem.ts";

export type CertificateChainResult =
  | {
      ok: true;
      /** The URI SAN, else the email SAN (what sigstore's identity policies match). */
      subjectAlternativeName: string | undefined;
      emails: readonly string[];
      uris: readonly string[];
      /**
       * The OIDC issuer Fulcio recorded: OID 1.3.6.1.4.1.57264.1.8 (DER UTF8String) when present,
       * else 1.3.6.1.4.1.57264.1.1 (raw string, deprecated). Undefined for non-Fulcio certificates.
       */
      issuer: string | undefined;
      /** The leaf's public key (SPKI PEM): what the signature must verify with. */
      publicKeyPem: string;
      /** Certificates in the verified path, leaf to trusted root. */
      pathLength: number;
    }
  | { ok: false; reason: string };

const OID_SAN = "2.5.29.17";
const OID_EKU = "2.5.29.37";
const OID_EKU_CODE_SIGNING = "1.3.6.1.5.5.7.3.3";
const OID_EKU_ANY = "2.5.29.37.0";
const OID_FULCIO_ISSUER_V1 = "1.3.6.1.4.1.57264.1.1";
const OID_FULCIO_ISSUER_V2 = "1.3.6.1.4.1.57264.1.8";
const MAX_DEPTH = 8;

/**
 * Legacy keyless / private-PKI signer certificate (cosign-formats.md §1.7): `leafPem` must chain, through
 * certificates from `chainPem` (the `dev.sigstore.cosign/chain` annotation, untrusted) and
 * `trustedIntermediatesPem` (configured, not anchors), to one of `trustedRootsPem`, with every
 * certificate valid at `at` (for Fulcio: the Rekor integratedTime, never "now"), issuers being CAs
 * within their path length, and the leaf usable for code signing (key usage digitalSignature and
 * extended key usage codeSigning, each when present; intermediates' EKUs must allow codeSigning too).
 * Does not check SCTs, and does not decide who may sign: match the returned identity in policy/.
 */
export function verifyCertificateChain(input: {
  leafPem: string;
  chainPem?: string;
  trustedRootsPem: readonly string[];
  trustedIntermediatesPem?: readonly string[];
  at: Date;
}): CertificateChainResult {
  const leafDers = parseCertificatePems(input.leafPem);
  if (leafDers?.length !== 1) return fail("leaf: expected exactly one PEM certificate");
  const roots = parseAll(input.trustedRootsPem);
  const pool = parseAll([input.chainPem ?? "", ...(input.trustedIntermediatesPem ?? [])]);
  if (roots === undefined || roots.length === 0) return fail("no readable trusted root certificate");
  if (pool === undefined) return fail("chain: unreadable PEM certificate");
  let leaf: X509Certificate;
  try {
    leaf = parseDer(leafDers[0] as Uint8Array);
  } catch {
    return fail("leaf: not an X.509 certificate");
  }

  try {
    const failures: string[] = [];
    const path = findPath([leaf], roots, [...roots, ...pool], input.at, failures);
    if (path === undefined) return fail(failures[0] ?? "no path from the leaf to a trusted root");
    return { ok: true, ...identity(leaf), publicKeyPem: leafPublicKeyPem(leaf), pathLength: path.length };
  } catch {
    return fail("malformed certificate");
  }
}

/** Depth-first search for a path ending in a trusted root that passes every check. */
function findPath(
  path: readonly X509Certificate[],
  roots: readonly X509Certificate[],
  candidates: readonly X509Certificate[],
  at: Date,
  failures: string[],
): readonly X509Certificate[] | undefined {
  const current = path[path.length - 1] as X509Certificate;
  if (path.length > 1 && roots.some((root) => root.equals(current))) {
    const problem = checkPath(path, at);
    if (problem === undefined) return path;
    failures.push(problem);
    return undefined;
  }
  if (path.length >= MAX_DEPTH) return undefined;
  for (const issuer of candidates) {
    if (path.some((cert) => cert.equals(issuer))) continue;
    if (!issuer.subject.equals(current.issuer) || !signedBy(current, issuer)) continue;
    const found = findPath([...path, issuer], roots, candidates, at, failures);
    if (found !== undefined) return found;
  }
  return undefined;
}

function checkPath(path: readonly X509Certificate[], at: Date): string | undefined {
  for (const [depth, cert] of path.entries()) {
    if (!cert.validForDate(at)) {
      return `${depth === 0 ? "leaf" : `certificate ${depth}`} not valid at ${at.toISOString()} (valid ${cert.notBefore.toISOString()} to ${cert.notAfter.toISOString()})`;
    }
    if (!allowsCodeSigning(cert)) return `certificate ${depth}: extended key usage excludes code signing`;
    if (depth === 0) continue;
    if (!cert.isCA) return `certificate ${depth}: issuer is not a CA`;
    const pathLen = cert.extBasicConstraints?.pathLenConstraint;
    if (pathLen !== undefined && BigInt(depth - 1) > pathLen)
      return `certificate ${depth}: path length exceeded`;
  }
  const leaf = path[0] as X509Certificate;
  if (leaf.extKeyUsage !== undefined && !leaf.extKeyUsage.digitalSignature) {
    return "leaf: key usage excludes digital signatures";
  }
  return undefined;
}

function allowsCodeSigning(cert: X509Certificate): boolean {
  const eku = cert.extension(OID_EKU);
  if (eku === undefined) return true;
  const oids = (eku.valueObj.subs[0]?.subs ?? []).map((obj) => obj.toOID());
  return oids.includes(OID_EKU_CODE_SIGNING) || oids.includes(OID_EKU_ANY);
}

function signedBy(cert: X509Certificate, issuer: X509Certificate): boolean {
  try {
    return cert.verify(issuer);
  } catch {
    return false;
  }
}

function identity(leaf: X509Certificate): {
  subjectAlternativeName: string | undefined;
  emails: string[];
  uris: string[];
  issuer: string | undefined;
} {
  const emails: string[] = [];
  const uris: string[] = [];
  const names = leaf.extension(OID_SAN)?.valueObj.subs[0]?.subs ?? [];
  for (const name of names) {
    if (name.tag.isContextSpecific(1)) emails.push(name.value.toString("utf8"));
    if (name.tag.isContextSpecific(6)) uris.push(name.value.toString("utf8"));
  }
  const v2 = leaf.extension(OID_FULCIO_ISSUER_V2)?.valueObj.subs[0]?.value.toString("utf8");
  const v1 = leaf.extension(OID_FULCIO_ISSUER_V1)?.value.toString("utf8");
  return { subjectAlternativeName: uris[0] ?? emails[0], emails, uris, issuer: v2 ?? v1 };
}

function leafPublicKeyPem(leaf: X509Certificate): string {
  return createPublicKey({ key: leaf.publicKey, format: "der", type: "spki" })
    .export({ type: "spki", format: "pem" })
    .toString();
}

function parseAll(pems: readonly string[]): X509Certificate[] | undefined {
  const certs: X509Certificate[] = [];
  for (const pem of pems) {
    const ders = parseCertificatePems(pem);
    if (ders === undefined) return undefined;
    for (const der of ders) {
      try {
        certs.push(parseDer(der));
      } catch {
        return undefined;
      }
    }
  }
  return certs;
}

function parseDer(der: Uint8Array): X509Certificate {
  return X509Certificate.parse(Buffer.from(der));
}

function fail(reason: string): CertificateChainResult {
  return { ok: false, reason };
}
