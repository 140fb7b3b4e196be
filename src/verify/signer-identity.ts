import { ASN1Obj, X509Certificate } from "@sigstore/core";

/**
 * A keyless signer identity as a policy states it (cosign's `--certificate-identity[-regexp]` and
 * `--certificate-oidc-issuer[-regexp]`, plus exact Fulcio extension values), compiled once. Regular
 * expressions match the WHOLE value (anchored), unlike cosign's: `subjectRegExp: mitr` does not accept
 * mitr@redhat.com.
 */
export interface SignerIdentitySpec {
  name: string;
  issuer?: string | undefined;
  issuerRegExp?: string | undefined;
  subject?: string | undefined;
  subjectRegExp?: string | undefined;
  /** Exact values of Fulcio certificate extensions, by their names (FULCIO_EXTENSIONS). */
  extensions?: Readonly<Record<string, string>> | undefined;
}

export interface SignerIdentity {
  name: string;
  issuer: string | RegExp;
  subject: string | RegExp;
  /** OID → exact value. */
  extensions: ReadonlyMap<string, string>;
  /** The spec, for fingerprints and views. */
  spec: Readonly<SignerIdentitySpec>;
}

/** What a Fulcio certificate says about its signer. */
export interface CertificateSigner {
  /** The SANs a subject is matched against: URI, email, Fulcio's username otherName. */
  subjects: readonly string[];
  issuer: string | undefined;
  /** Fulcio extension values by OID. */
  extensions: ReadonlyMap<string, string>;
  /**
   * What the certificate may be used for: a signing certificate carries key usage digitalSignature
   * and extended key usage codeSigning (Fulcio's; sigstore-go requires the latter, sigstore-js checks neither).
   */
  usage: { digitalSignature: boolean; codeSigning: boolean };
}

const FULCIO = "1.3.6.1.4.1.57264.1";

/**
 * Fulcio's certificate extensions by the names sigstore-go and Fulcio give them (`certificate.Extensions`).
 * The first six are the deprecated raw-valued GitHub ones; the rest are DER UTF8Strings.
 */
export const FULCIO_EXTENSIONS: Readonly<Record<string, { oid: string; der: boolean }>> = {
  githubWorkflowTrigger: { oid: `${FULCIO}.2`, der: false },
  githubWorkflowSHA: { oid: `${FULCIO}.3`, der: false },
  githubWorkflowName: { oid: `${FULCIO}.4`, der: false },
  githubWorkflowRepository: { oid: `${FULCIO}.5`, der: false },
  githubWorkflowRef: { oid: `${FULCIO}.6`, der: false },
  buildSignerURI: { oid: `${FULCIO}.9`, der: true },
  buildSignerDigest: { oid: `${FULCIO}.10`, der: true },
  runnerEnvironment: { oid: `${FULCIO}.11`, der: true },
  sourceRepositoryURI: { oid: `${FULCIO}.12`, der: true },
  sourceRepositoryDigest: { oid: `${FULCIO}.13`, der: true },
  sourceRepositoryRef: { oid: `${FULCIO}.14`, der: true },
  sourceRepositoryIdentifier: { oid: `${FULCIO}.15`, der: true },
  sourceRepositoryOwnerURI: { oid: `${FULCIO}.16`, der: true },
  sourceRepositoryOwnerIdentifier: { oid: `${FULCIO}.17`, der: true },
  buildConfigURI: { oid: `${FULCIO}.18`, der: true },
  buildConfigDigest: { oid: `${FULCIO}.19`, der: true },
  buildTrigger: { oid: `${FULCIO}.20`, der: true },
  runInvocationURI: { oid: `${FULCIO}.21`, der: true },
  sourceRepositoryVisibilityAtSigning: { oid: `${FULCIO}.22`, der: true },
};
const ISSUER_V1 = `${FULCIO}.1`;
const ISSUER_V2 = `${FULCIO}.8`;
const USERNAME_SAN = `${FULCIO}.7`;
const EXTENDED_KEY_USAGE = "2.5.29.37";
const CODE_SIGNING = "1.3.6.1.5.5.7.3.3";

/** Compiles a spec; throws an Error naming what is wrong (reported as a config problem). */
export function compileSignerIdentity(spec: SignerIdentitySpec): SignerIdentity {
  const one = (exact: string | undefined, pattern: string | undefined, what: string): string | RegExp => {
    if ((exact === undefined) === (pattern === undefined))
      throw new Error(`give exactly one of ${what} or ${what}RegExp`);
    if (exact !== undefined) return exact;
    try {
      return new RegExp(`^(?:${pattern})$`, "u");
    } catch (err) {
      throw new Error(`${what}RegExp does not compile: ${(err as Error).message}`);
    }
  };
  const extensions = new Map<string, string>();
  for (const [name, value] of Object.entries(spec.extensions ?? {})) {
    const known = Object.hasOwn(FULCIO_EXTENSIONS, name) ? FULCIO_EXTENSIONS[name] : undefined;
    if (!known)
      throw new Error(
        `extensions.${name}: not a Fulcio extension (${Object.keys(FULCIO_EXTENSIONS).join(", ")})`,
      );
    extensions.set(known.oid, value);
  }
  return {
    name: spec.name,
    issuer: one(spec.issuer, spec.issuerRegExp, "issuer"),
    subject: one(spec.subject, spec.subjectRegExp, "subject"),
    extensions,
    spec,
  };
}

/** The signer a Fulcio (or private CA) leaf certificate names. */
export function certificateSigner(leafDer: Uint8Array): CertificateSigner {
  const cert = X509Certificate.parse(Buffer.from(leafDer));
  const san = cert.extSubjectAltName;
  const subjects = [san?.uri, san?.rfc822Name, san?.otherName(USERNAME_SAN)].filter(
    (v): v is string => typeof v === "string" && v !== "",
  );
  const extensions = new Map<string, string>();
  for (const { oid, der } of Object.values(FULCIO_EXTENSIONS)) {
    const value = extensionValue(cert, oid, der);
    if (value !== undefined) extensions.set(oid, value);
  }
  const issuer = extensionValue(cert, ISSUER_V2, true) ?? extensionValue(cert, ISSUER_V1, false);
  const usage = {
    digitalSignature: cert.extKeyUsage?.digitalSignature === true,
    codeSigning: hasCodeSigning(cert),
  };
  return { subjects, issuer, extensions, usage };
}

function hasCodeSigning(cert: X509Certificate): boolean {
  const ext = cert.extension(EXTENDED_KEY_USAGE);
  if (!ext) return false;
  try {
    return ASN1Obj.parseBuffer(Buffer.from(ext.value)).subs.some((oid) => oid.toOID() === CODE_SIGNING);
  } catch {
    return false;
  }
}

/** Does the certificate's signer match the identity: issuer, a subject, and every listed extension? */
export function matchesIdentity(identity: SignerIdentity, signer: CertificateSigner): boolean {
  if (signer.issuer === undefined || !matches(identity.issuer, signer.issuer)) return false;
  if (!signer.subjects.some((s) => matches(identity.subject, s))) return false;
  for (const [oid, value] of identity.extensions) if (signer.extensions.get(oid) !== value) return false;
  return true;
}

function matches(expected: string | RegExp, actual: string): boolean {
  return typeof expected === "string" ? expected === actual : expected.test(actual);
}

function extensionValue(cert: X509Certificate, oid: string, der: boolean): string | undefined {
  const ext = cert.extension(oid);
  if (!ext) return undefined;
  try {
    if (!der) return ext.value.toString("utf8");
    // extnValue holds a DER UTF8String (tag 12); other string types are not what Fulcio writes.
    const obj = ASN1Obj.parseBuffer(Buffer.from(ext.value));
    return obj.tag.number === 12 ? obj.value.toString("utf8") : undefined;
  } catch {
    return undefined;
  }
}
