// A private Sigstore made in the test (@sigstore/mock): a Fulcio-like CA with a CT log, a Rekor-like
// log, and the trusted root that names them; keyless and key signatures made and logged by test code,
// in cosign's legacy `.sig` layer form.
import { createHash, generateKeyPairSync, type KeyObject, sign, webcrypto } from "node:crypto";
import "reflect-metadata";
import * as x509 from "@peculiar/x509";
import { initializeCTLog, initializeTLog } from "@sigstore/mock";
import { preAuthEncoding } from "../../src/local/index.ts";

export interface SignerIdentityClaims {
  /** The certificate's URI SAN (a workflow identity) or, with `email`, its email SAN. */
  subject: string;
  issuer: string;
  /** Extra Fulcio extensions (DER UTF8String values), by OID. */
  extensions?: Record<string, string>;
  /** Extra extensions with raw values (the deprecated GitHub ones, 1.3.6.1.4.1.57264.1.2–.6), by OID. */
  rawExtensions?: Record<string, string>;
  /** An email SAN besides the URI one. */
  email?: string;
}

/** How the CA shapes a leaf (and its issuing intermediate): Fulcio's shape unless told otherwise. */
export interface LeafShape {
  /** Extended key usage codeSigning (default true). */
  codeSigning?: boolean;
  /** Another extended key usage (emailProtection) listed before codeSigning (default false). */
  otherUsageFirst?: boolean;
  /** Key usage digitalSignature (default true). */
  digitalSignature?: boolean;
  /** The intermediate that issues the leaf is a CA (default true). */
  intermediateIsCa?: boolean;
  /** The intermediate's path length constraint 0 (default none); then a second intermediate below it. */
  pathLengthViolation?: boolean;
  /** The leaf names the intermediate as its issuer but is signed by another key (default false). */
  forgedSignature?: boolean;
}

/** How the log entry of a keyless `.sig` signature is written: Rekor's hashedrekord 0.0.1 over sha256 unless told otherwise. */
export interface LogEntryShape {
  kind?: string;
  apiVersion?: string;
  /** The algorithm the body states beside the (always sha256) digest value; null: none. */
  hashAlgorithm?: string | null;
  /** The signer (PEM) the body names, instead of the one that signed. */
  signerPem?: string;
}

export interface PrivateSigstore {
  /** protobuf-specs TrustedRoot JSON naming this CA, CT log and Rekor log. */
  trustedRootJson: string;
  /**
   * A keyless signature of `payload`, as the annotations of a cosign `.sig` layer: signature,
   * certificate, and the Rekor SET bundle.
   */
  signKeyless(
    payload: Uint8Array,
    identity: SignerIdentityClaims,
    shape?: LeafShape,
    entry?: LogEntryShape,
  ): Promise<Record<string, string>>;
  /**
   * A keyless DSSE signature of `payload` (with `payloadType`) as a Sigstore bundle, as JSON: v0.3 (as
   * `cosign sign` v3 writes: the leaf certificate, a dsse 0.0.1 entry with its SET and inclusion proof),
   * or v0.1 (a certificate chain, the SET only).
   */
  signKeylessBundle(
    payload: Uint8Array,
    payloadType: string,
    identity: SignerIdentityClaims,
    version?: "v0.1" | "v0.3",
  ): Promise<string>;
  /**
   * A keyless DSSE attestation of `statement` in cosign's legacy `.att` form: the envelope blob and
   * the layer's certificate and Rekor SET annotations (a dsse 0.0.1 entry).
   */
  attestKeylessLegacy(
    statement: Uint8Array,
    identity: SignerIdentityClaims,
  ): Promise<{ envelope: Buffer; annotations: Record<string, string> }>;
  /** A key signature of `payload` logged in this Rekor: the layer annotations (signature and SET). */
  signWithKeyLogged(
    payload: Uint8Array,
    privateKey: KeyObject,
    publicKeyPem: string,
    entry?: LogEntryShape,
  ): Promise<Record<string, string>>;
}

const LONG_AGO = "2000-01-01T00:00:00Z";

/**
 * `caClock`: the time the CA stamps certificates with (a certificate is valid for 10 minutes from it);
 * `logClock`: the time the log integrates entries at. Apart, they make a certificate used outside its validity.
 */
export async function createPrivateSigstore(
  opts: { caClock?: Date; logClock?: Date } = {},
): Promise<PrivateSigstore> {
  const ecKeys = () => generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const ctLog = await initializeCTLog(ecKeys(), opts.caClock);
  const tlog = await initializeTLog("https://rekor.private.test", ecKeys(), opts.logClock);
  const ca = await createCa(ctLog, opts.caClock);
  const b64 = (bytes: ArrayBufferView | Buffer) =>
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("base64");
  const trustedRoot = {
    mediaType: "application/vnd.dev.sigstore.trustedroot+json;version=0.1",
    tlogs: [
      {
        baseUrl: "https://rekor.private.test",
        hashAlgorithm: "SHA2_256",
        publicKey: {
          rawBytes: b64(tlog.publicKey),
          keyDetails: "PKIX_ECDSA_P256_SHA_256",
          validFor: { start: LONG_AGO },
        },
        logId: { keyId: createHash("sha256").update(tlog.publicKey).digest("base64") },
      },
    ],
    // Fulcio's order: intermediates first, the root last.
    certificateAuthorities: ca.chains.map((chain) => ({
      subject: { organization: "pullgate.test", commonName: "private-fulcio" },
      uri: "https://fulcio.private.test",
      certChain: { certificates: chain.map((der) => ({ rawBytes: der.toString("base64") })) },
      validFor: { start: LONG_AGO },
    })),
    ctlogs: [
      {
        baseUrl: "https://ctfe.private.test",
        hashAlgorithm: "SHA2_256",
        publicKey: {
          rawBytes: b64(ctLog.publicKey),
          keyDetails: "PKIX_ECDSA_P256_SHA_256",
          validFor: { start: LONG_AGO },
        },
        logId: { keyId: b64(ctLog.logID) },
      },
    ],
    timestampAuthorities: [],
  };

  /** Logs `body` and returns the entry as Rekor answers it. */
  const logEntry = async (body: unknown) => {
    const entries = await tlog.log(body as Parameters<typeof tlog.log>[0]);
    return Object.values(entries)[0] as {
      body: string;
      integratedTime: number;
      logIndex: number;
      logID: string;
      verification: {
        signedEntryTimestamp: string;
        inclusionProof: {
          logIndex: number;
          treeSize: number;
          rootHash: string;
          hashes: string[];
          checkpoint: string;
        };
      };
    };
  };

  /** Logs a hashedrekord entry for (payload, signature, signer PEM) and returns cosign's bundle annotation. */
  const logged = async (
    payload: Uint8Array,
    signature: Buffer,
    signerPem: string,
    shape: LogEntryShape = {},
  ) => {
    const entry = await logEntry({
      apiVersion: shape.apiVersion ?? "0.0.1",
      kind: shape.kind ?? "hashedrekord",
      spec: {
        data: {
          hash: {
            ...(shape.hashAlgorithm === null ? {} : { algorithm: shape.hashAlgorithm ?? "sha256" }),
            value: createHash("sha256").update(payload).digest("hex"),
          },
        },
        signature: {
          content: signature.toString("base64"),
          publicKey: { content: Buffer.from(shape.signerPem ?? signerPem).toString("base64") },
        },
      },
    });
    return JSON.stringify({
      SignedEntryTimestamp: entry.verification.signedEntryTimestamp,
      Payload: {
        body: entry.body,
        integratedTime: entry.integratedTime,
        logIndex: entry.logIndex,
        logID: entry.logID,
      },
    });
  };

  /** A keyless DSSE signature of `payload` and its dsse 0.0.1 log entry. */
  const signDsseKeyless = async (
    payload: Uint8Array,
    payloadType: string,
    identity: SignerIdentityClaims,
  ) => {
    const { publicKey, privateKey } = ecKeys();
    const der = await ca.issue(publicKey, identity, {});
    const signature = sign("sha256", preAuthEncoding(payloadType, payload), privateKey);
    const envelope = {
      payload: Buffer.from(payload).toString("base64"),
      payloadType,
      signatures: [{ sig: signature.toString("base64"), keyid: "" }],
    };
    const entry = await logEntry({
      apiVersion: "0.0.1",
      kind: "dsse",
      spec: {
        envelopeHash: {
          algorithm: "sha256",
          value: createHash("sha256").update(JSON.stringify(envelope)).digest("hex"),
        },
        payloadHash: { algorithm: "sha256", value: createHash("sha256").update(payload).digest("hex") },
        signatures: [
          { signature: signature.toString("base64"), verifier: Buffer.from(toPem(der)).toString("base64") },
        ],
      },
    });
    return { envelope, der, entry };
  };

  return {
    trustedRootJson: JSON.stringify(trustedRoot),
    async signKeyless(payload, identity, shape = {}, entry = {}) {
      const { publicKey, privateKey } = ecKeys();
      const certificate = toPem(await ca.issue(publicKey, identity, shape));
      const signature = sign("sha256", payload, privateKey);
      return {
        "dev.cosignproject.cosign/signature": signature.toString("base64"),
        "dev.sigstore.cosign/certificate": certificate,
        "dev.sigstore.cosign/bundle": await logged(payload, signature, certificate, entry),
      };
    },
    async signKeylessBundle(payload, payloadType, identity, version = "v0.1") {
      const { envelope, der, entry } = await signDsseKeyless(payload, payloadType, identity);
      const proof = entry.verification.inclusionProof;
      const tlogEntry = {
        logIndex: String(entry.logIndex),
        logId: { keyId: Buffer.from(entry.logID, "hex").toString("base64") },
        kindVersion: { kind: "dsse", version: "0.0.1" },
        integratedTime: String(entry.integratedTime),
        inclusionPromise: { signedEntryTimestamp: entry.verification.signedEntryTimestamp },
        ...(version === "v0.3"
          ? {
              inclusionProof: {
                logIndex: String(proof.logIndex),
                treeSize: String(proof.treeSize),
                rootHash: Buffer.from(proof.rootHash, "hex").toString("base64"),
                hashes: proof.hashes,
                checkpoint: { envelope: proof.checkpoint },
              },
            }
          : {}),
        canonicalizedBody: entry.body,
      };
      return JSON.stringify({
        mediaType:
          version === "v0.3"
            ? "application/vnd.dev.sigstore.bundle.v0.3+json"
            : "application/vnd.dev.sigstore.bundle+json;version=0.1",
        verificationMaterial: {
          ...(version === "v0.3"
            ? { certificate: { rawBytes: der.toString("base64") } }
            : { x509CertificateChain: { certificates: [{ rawBytes: der.toString("base64") }] } }),
          tlogEntries: [tlogEntry],
        },
        dsseEnvelope: envelope,
      });
    },
    async attestKeylessLegacy(statement, identity) {
      const { envelope, der, entry } = await signDsseKeyless(
        statement,
        "application/vnd.in-toto+json",
        identity,
      );
      return {
        envelope: Buffer.from(JSON.stringify(envelope)),
        annotations: {
          "dev.sigstore.cosign/certificate": toPem(der),
          "dev.sigstore.cosign/bundle": JSON.stringify({
            SignedEntryTimestamp: entry.verification.signedEntryTimestamp,
            Payload: {
              body: entry.body,
              integratedTime: entry.integratedTime,
              logIndex: entry.logIndex,
              logID: entry.logID,
            },
          }),
        },
      };
    },
    async signWithKeyLogged(payload, privateKey, publicKeyPem, entry = {}) {
      const signature = sign("sha256", payload, privateKey);
      return {
        "dev.cosignproject.cosign/signature": signature.toString("base64"),
        "dev.sigstore.cosign/bundle": await logged(payload, signature, publicKeyPem, entry),
      };
    },
  };
}

function toPem(der: Buffer): string {
  const lines = der.toString("base64").match(/.{1,64}/g) ?? [];
  return `-----BEGIN CERTIFICATE-----\n${lines.join("\n")}\n-----END CERTIFICATE-----\n`;
}

type CryptoKeyPair = webcrypto.CryptoKeyPair;
type CryptoKey = webcrypto.CryptoKey;
// @peculiar/x509 is typed against the DOM's Crypto; Node's webcrypto is that API.
const crypto = webcrypto as unknown as NonNullable<
  Parameters<typeof x509.X509CertificateGenerator.create>[1]
>;
const ALG = { name: "ECDSA", namedCurve: "P-256", hash: "SHA-256" } as const;
const MINUTES_10 = 10 * 60 * 1000;

interface Ca {
  /** The trusted root's certificate authorities: each chain intermediate(s) first, the root last. */
  chains: Buffer[][];
  issue(publicKey: KeyObject, identity: SignerIdentityClaims, shape: LeafShape): Promise<Buffer>;
}

/**
 * A Fulcio-like CA: a root and an intermediate (the trusted root lists both), issuing 10-minute leaf
 * certificates for one SAN, with the Fulcio issuer extension and an embedded SCT from `ctLog`.
 */
async function createCa(
  ctLog: Awaited<ReturnType<typeof initializeCTLog>>,
  clock: Date | undefined,
): Promise<Ca> {
  const now = () => clock ?? new Date();
  const rootKeys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
  const root = await x509.X509CertificateGenerator.createSelfSigned(
    {
      name: "CN=private-fulcio-root,O=pullgate.test",
      keys: rootKeys,
      signingAlgorithm: ALG,
      notBefore: new Date(Date.parse(LONG_AGO)),
      notAfter: new Date(Date.now() + 365 * 24 * 3600 * 1000),
      extensions: [
        new x509.BasicConstraintsExtension(true, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(rootKeys.publicKey, false, crypto),
      ],
    },
    crypto,
  );
  const intermediateOf = async (
    issuer: x509.X509Certificate,
    issuerKey: CryptoKey,
    isCa: boolean,
    pathLength?: number,
  ) => {
    const keys = (await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair;
    const cert = await x509.X509CertificateGenerator.create(
      {
        subject: `CN=private-fulcio-intermediate-${Math.random().toString(36).slice(2, 8)},O=pullgate.test`,
        issuer: issuer.subject,
        publicKey: keys.publicKey,
        signingKey: issuerKey,
        signingAlgorithm: ALG,
        notBefore: new Date(Date.parse(LONG_AGO)),
        notAfter: new Date(Date.now() + 365 * 24 * 3600 * 1000),
        extensions: [
          new x509.BasicConstraintsExtension(isCa, pathLength, true),
          new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
          await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, crypto),
          await x509.AuthorityKeyIdentifierExtension.create(
            issuerKey === rootKeys.privateKey ? rootKeys.publicKey : issuer.publicKey,
            false,
            crypto,
          ),
        ],
      },
      crypto,
    );
    return { cert, keys };
  };
  const intermediate = await intermediateOf(root, rootKeys.privateKey, true);
  // The negative shapes' issuers are trusted CAs too (listed in the trusted root): only the path's
  // rules (a CA flag, a path length) can refuse them.
  const notCa = await intermediateOf(intermediate.cert, intermediate.keys.privateKey, false);
  const limited = await intermediateOf(intermediate.cert, intermediate.keys.privateKey, true, 0);
  const below = await intermediateOf(limited.cert, limited.keys.privateKey, true);
  const der = (c: x509.X509Certificate) => Buffer.from(c.rawData);
  const issuerFor = (shape: LeafShape) =>
    shape.intermediateIsCa === false
      ? { issuer: notCa.cert, key: notCa.keys.privateKey }
      : shape.pathLengthViolation
        ? { issuer: below.cert, key: below.keys.privateKey }
        : { issuer: intermediate.cert, key: intermediate.keys.privateKey };
  return {
    chains: [
      [der(intermediate.cert), der(root)],
      [der(notCa.cert), der(intermediate.cert), der(root)],
      [der(below.cert), der(limited.cert), der(intermediate.cert), der(root)],
    ],
    async issue(publicKey, identity, shape) {
      const { issuer, key: issuerKey } = issuerFor(shape);
      const key = shape.forgedSignature
        ? ((await crypto.subtle.generateKey(ALG, true, ["sign", "verify"])) as CryptoKeyPair).privateKey
        : issuerKey;
      const leafKey = await crypto.subtle.importKey(
        "spki",
        publicKey.export({ type: "spki", format: "der" }),
        ALG,
        true,
        ["verify"],
      );
      const usages =
        shape.digitalSignature === false
          ? x509.KeyUsageFlags.nonRepudiation
          : x509.KeyUsageFlags.digitalSignature;
      const eku =
        shape.codeSigning === false
          ? [x509.ExtendedKeyUsage.emailProtection]
          : shape.otherUsageFirst
            ? [x509.ExtendedKeyUsage.emailProtection, x509.ExtendedKeyUsage.codeSigning]
            : [x509.ExtendedKeyUsage.codeSigning];
      const issued = now();
      const tbs: x509.X509CertificateCreateParams = {
        serialNumber: "0a1b2c3d",
        subject: "",
        issuer: issuer.subject,
        notBefore: issued,
        notAfter: new Date(issued.getTime() + MINUTES_10),
        publicKey: leafKey,
        signingKey: key,
        signingAlgorithm: ALG,
        extensions: [
          new x509.KeyUsagesExtension(usages, true),
          new x509.ExtendedKeyUsageExtension(eku),
          new x509.SubjectAlternativeNameExtension(
            [
              { type: "url", value: identity.subject },
              ...(identity.email ? [{ type: "email" as const, value: identity.email }] : []),
            ],
            true,
          ),
          await x509.AuthorityKeyIdentifierExtension.create(issuer.publicKey, false, crypto),
          new x509.Extension("1.3.6.1.4.1.57264.1.1", false, Buffer.from(identity.issuer)),
          ...Object.entries(identity.extensions ?? {}).map(
            ([oid, value]) => new x509.Extension(oid, false, derUtf8(value)),
          ),
          ...Object.entries(identity.rawExtensions ?? {}).map(
            ([oid, value]) => new x509.Extension(oid, false, Buffer.from(value)),
          ),
        ],
      };
      const pre = await x509.X509CertificateGenerator.create(tbs, crypto);
      const issuerId = createHash("sha256").update(Buffer.from(issuer.publicKey.rawData)).digest();
      const sct = Buffer.from(
        await ctLog.log(
          pre.rawData,
          issuerId.buffer.slice(issuerId.byteOffset, issuerId.byteOffset + issuerId.byteLength),
        ),
      );
      (tbs.extensions ?? []).push(
        new x509.Extension(
          "1.3.6.1.4.1.11129.2.4.2",
          false,
          derOctetString(Buffer.concat([Buffer.from([0x00, sct.length]), sct])),
        ),
      );
      const cert = await x509.X509CertificateGenerator.create(tbs, crypto);
      return Buffer.from(cert.rawData);
    },
  };
}

function derLength(n: number): Buffer {
  return n < 0x80
    ? Buffer.from([n])
    : n < 0x100
      ? Buffer.from([0x81, n])
      : Buffer.from([0x82, n >> 8, n & 0xff]);
}

function derUtf8(value: string): Buffer {
  const bytes = Buffer.from(value, "utf8");
  return Buffer.concat([Buffer.from([0x0c]), derLength(bytes.length), bytes]);
}

function derOctetString(bytes: Buffer): Buffer {
  return Buffer.concat([Buffer.from([0x04]), derLength(bytes.length), bytes]);
}
