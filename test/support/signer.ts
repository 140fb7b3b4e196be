import { createHash, generateKeyPairSync, type KeyObject, sign } from "node:crypto";

/**
 * A test signer that writes cosign's two signature layouts to a real registry over the distribution
 * push API (verify/'s crypto is anchored by the independent vectors in test/vectors; this is for
 * registry plumbing):
 *  - legacy: an OCI image manifest under the tag `sha256-<hex>.sig` whose layers are simplesigning
 *    payloads with the base64 signature in `dev.cosignproject.cosign/signature`;
 *  - Sigstore bundle v0.3 (cosign v3): an OCI 1.1 artifact manifest with `subject` = the image and
 *    `artifactType` = the bundle media type, listed in the referrers tag schema index `sha256-<hex>`
 *    (distribution 2.8 has no referrers API), holding a DSSE envelope over an in-toto statement.
 */

export const SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
export const BUNDLE_V03 = "application/vnd.dev.sigstore.bundle.v0.3+json";
export const COSIGN_SIGN_PREDICATE = "https://sigstore.dev/cosign/sign/v1";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
const OCI_EMPTY = "application/vnd.oci.empty.v1+json";

export interface TestKey {
  privateKey: KeyObject;
  publicKeyPem: string;
}

export function generateTestKey(): TestKey {
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  return { privateKey, publicKeyPem: publicKey.export({ type: "spki", format: "pem" }) as string };
}

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1);
}

/** Minimal distribution push client (monolithic blob uploads, manifest PUT). */
export class RegistryWriter {
  readonly url: string;
  constructor(url: string) {
    this.url = url;
  }

  async pushBlob(repository: string, bytes: Uint8Array): Promise<string> {
    const digest = sha256(bytes);
    const head = await fetch(`${this.url}/v2/${repository}/blobs/${digest}`, { method: "HEAD" });
    if (head.ok) return digest;
    const start = await fetch(`${this.url}/v2/${repository}/blobs/uploads/`, { method: "POST" });
    if (start.status !== 202) throw new Error(`blob upload start: ${start.status}`);
    const location = new URL(start.headers.get("location") as string, this.url);
    location.searchParams.set("digest", digest);
    const put = await fetch(location, {
      method: "PUT",
      headers: { "content-type": "application/octet-stream" },
      body: Buffer.from(bytes),
    });
    if (put.status !== 201) throw new Error(`blob upload: ${put.status} ${await put.text()}`);
    return digest;
  }

  async pushManifest(
    repository: string,
    reference: string,
    bytes: Uint8Array,
    mediaType: string,
  ): Promise<string> {
    const res = await fetch(`${this.url}/v2/${repository}/manifests/${reference}`, {
      method: "PUT",
      headers: { "content-type": mediaType },
      body: Buffer.from(bytes),
    });
    if (res.status !== 201)
      throw new Error(`manifest push ${repository}:${reference}: ${res.status} ${await res.text()}`);
    return sha256(bytes);
  }

  async getManifest(repository: string, reference: string, accept: string): Promise<Buffer | undefined> {
    const res = await fetch(`${this.url}/v2/${repository}/manifests/${reference}`, { headers: { accept } });
    if (res.status === 404) return undefined;
    if (!res.ok) throw new Error(`manifest get: ${res.status}`);
    return Buffer.from(await res.arrayBuffer());
  }
}

export function simpleSigningPayload(digest: string, dockerReference = "registry.test/repo"): Buffer {
  return Buffer.from(
    JSON.stringify({
      critical: {
        identity: { "docker-reference": dockerReference },
        image: { "docker-manifest-digest": digest },
        type: "cosign container image signature",
      },
      optional: null,
    }),
  );
}

/** One legacy signature layer: the payload's descriptor with the base64 signature annotation. */
export function legacySignatureLayer(
  payload: Buffer,
  payloadDigest: string,
  key: TestKey,
): Record<string, unknown> {
  return {
    mediaType: SIMPLESIGNING,
    size: payload.length,
    digest: payloadDigest,
    annotations: {
      "dev.cosignproject.cosign/signature": sign("sha256", payload, key.privateKey).toString("base64"),
    },
  };
}

/** The dummy image config cosign writes for a `.sig` manifest (diff_ids = the payload digests). */
export function legacySignatureConfig(layers: readonly unknown[]): Buffer {
  return Buffer.from(
    JSON.stringify({
      architecture: "",
      os: "",
      config: {},
      rootfs: { type: "layers", diff_ids: layers.map((l) => (l as { digest: string }).digest) },
    }),
  );
}

/** The `.sig` manifest: an OCI image manifest over the signature layers. */
export function legacySignatureManifest(
  layers: readonly unknown[],
  config: Buffer,
  configDigest: string,
): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: {
        mediaType: "application/vnd.oci.image.config.v1+json",
        size: config.length,
        digest: configDigest,
      },
      layers,
    }),
  );
}

/** An OCI 1.1 artifact manifest carrying a bundle as the referrer of `subject`. */
export function bundleReferrerManifest(opts: {
  emptyDigest: string;
  bundle: Buffer;
  bundleDigest: string;
  subject: { mediaType: string; size: number; digest: string };
}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUNDLE_V03,
      config: { mediaType: OCI_EMPTY, size: 2, digest: opts.emptyDigest },
      layers: [{ mediaType: BUNDLE_V03, size: opts.bundle.length, digest: opts.bundleDigest }],
      subject: opts.subject,
      annotations: {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE,
      },
    }),
  );
}

/** The referrers tag schema index `sha256-<hex>` with one more referrer appended. */
export function referrersIndexWith(
  existing: Buffer | undefined,
  referrer: Buffer,
  referrerDigest: string,
): Buffer {
  const manifests: unknown[] = existing
    ? (JSON.parse(existing.toString()) as { manifests: unknown[] }).manifests
    : [];
  manifests.push({
    mediaType: OCI_MANIFEST,
    size: referrer.length,
    digest: referrerDigest,
    artifactType: BUNDLE_V03,
  });
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
}

/**
 * Signs `digest` the legacy way and appends the signature to `<sigRepository>:sha256-<hex>.sig`.
 * `payloadDigest` lets a test sign a payload naming another digest (a copied signature).
 */
export async function signLegacy(opts: {
  writer: RegistryWriter;
  repository: string;
  digest: string;
  key: TestKey;
  payloadDigest?: string;
}): Promise<{ sigManifestDigest: string }> {
  const payload = simpleSigningPayload(opts.payloadDigest ?? opts.digest);
  const tag = `sha256-${hexOf(opts.digest)}.sig`;
  const existing = await opts.writer.getManifest(opts.repository, tag, OCI_MANIFEST);
  const layers: unknown[] = existing ? (JSON.parse(existing.toString()) as { layers: unknown[] }).layers : [];
  const payloadDigest = await opts.writer.pushBlob(opts.repository, payload);
  layers.push(legacySignatureLayer(payload, payloadDigest, opts.key));
  const config = legacySignatureConfig(layers);
  const configDigest = await opts.writer.pushBlob(opts.repository, config);
  const manifest = legacySignatureManifest(layers, config, configDigest);
  const sigManifestDigest = await opts.writer.pushManifest(opts.repository, tag, manifest, OCI_MANIFEST);
  return { sigManifestDigest };
}

function pae(payloadType: string, payload: Buffer): Buffer {
  return Buffer.concat([
    Buffer.from(`DSSEv1 ${Buffer.byteLength(payloadType)} ${payloadType} ${payload.length} `),
    payload,
  ]);
}

/** A Sigstore bundle v0.3 with a DSSE envelope over an in-toto statement (what `cosign sign` v3 writes with a key). */
export function makeBundle(opts: {
  digest: string;
  key: TestKey;
  predicateType?: string;
  subjectDigest?: string;
}): Buffer {
  const subject = opts.subjectDigest ?? opts.digest;
  const statement = Buffer.from(
    JSON.stringify({
      _type: "https://in-toto.io/Statement/v1",
      subject: [{ digest: { sha256: hexOf(subject) } }],
      predicateType: opts.predicateType ?? COSIGN_SIGN_PREDICATE,
      predicate: {},
    }),
  );
  const payloadType = "application/vnd.in-toto+json";
  const sig = sign("sha256", pae(payloadType, statement), opts.key.privateKey).toString("base64");
  const publicDer = createPublicDer(opts.key.publicKeyPem);
  return Buffer.from(
    JSON.stringify({
      mediaType: BUNDLE_V03,
      verificationMaterial: {
        publicKey: { hint: createHash("sha256").update(publicDer).digest("base64") },
        tlogEntries: [],
      },
      dsseEnvelope: { payload: statement.toString("base64"), payloadType, signatures: [{ sig, keyid: "" }] },
    }),
  );
}

function createPublicDer(pem: string): Buffer {
  const b64 = pem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
  return Buffer.from(b64, "base64");
}

/**
 * Attaches a bundle for `digest` as an OCI 1.1 referrer and lists it in the referrers tag schema
 * index `<repository>:sha256-<hex>`.
 */
export async function attachBundle(opts: {
  writer: RegistryWriter;
  repository: string;
  digest: string;
  subjectMediaType: string;
  subjectSize: number;
  bundle: Buffer;
}): Promise<{ referrerDigest: string }> {
  const emptyDigest = await opts.writer.pushBlob(opts.repository, Buffer.from("{}"));
  const bundleDigest = await opts.writer.pushBlob(opts.repository, opts.bundle);
  const manifest = bundleReferrerManifest({
    emptyDigest,
    bundle: opts.bundle,
    bundleDigest,
    subject: { mediaType: opts.subjectMediaType, size: opts.subjectSize, digest: opts.digest },
  });
  const referrerDigest = sha256(manifest);
  await opts.writer.pushManifest(opts.repository, referrerDigest, manifest, OCI_MANIFEST);
  const tag = `sha256-${hexOf(opts.digest)}`;
  const existing = await opts.writer.getManifest(opts.repository, tag, OCI_INDEX);
  await opts.writer.pushManifest(
    opts.repository,
    tag,
    referrersIndexWith(existing, manifest, referrerDigest),
    OCI_INDEX,
  );
  return { referrerDigest };
}
