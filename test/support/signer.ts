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
  const signature = sign("sha256", payload, opts.key.privateKey).toString("base64");
  const tag = `sha256-${hexOf(opts.digest)}.sig`;
  const existing = await opts.writer.getManifest(opts.repository, tag, OCI_MANIFEST);
  const layers: unknown[] = existing ? (JSON.parse(existing.toString()) as { layers: unknown[] }).layers : [];
  const payloadDigest = await opts.writer.pushBlob(opts.repository, payload);
  layers.push({
    mediaType: SIMPLESIGNING,
    size: payload.length,
    digest: payloadDigest,
    annotations: { "dev.cosignproject.cosign/signature": signature },
  });
  const config = Buffer.from(
    JSON.stringify({
      architecture: "",
      os: "",
      config: {},
      rootfs: { type: "layers", diff_ids: layers.map((l) => (l as { digest: string }).digest) },
    }),
  );
  const configDigest = await opts.writer.pushBlob(opts.repository, config);
  const manifest = Buffer.from(
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
  const empty = Buffer.from("{}");
  const emptyDigest = await opts.writer.pushBlob(opts.repository, empty);
  const bundleDigest = await opts.writer.pushBlob(opts.repository, opts.bundle);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      artifactType: BUNDLE_V03,
      config: { mediaType: OCI_EMPTY, size: 2, digest: emptyDigest },
      layers: [{ mediaType: BUNDLE_V03, size: opts.bundle.length, digest: bundleDigest }],
      subject: { mediaType: opts.subjectMediaType, size: opts.subjectSize, digest: opts.digest },
      annotations: {
        "dev.sigstore.bundle.content": "dsse-envelope",
        "dev.sigstore.bundle.predicateType": COSIGN_SIGN_PREDICATE,
      },
    }),
  );
  const referrerDigest = sha256(manifest);
  await opts.writer.pushManifest(opts.repository, referrerDigest, manifest, OCI_MANIFEST);
  const tag = `sha256-${hexOf(opts.digest)}`;
  const existing = await opts.writer.getManifest(opts.repository, tag, OCI_INDEX);
  const manifests: unknown[] = existing
    ? (JSON.parse(existing.toString()) as { manifests: unknown[] }).manifests
    : [];
  manifests.push({
    mediaType: OCI_MANIFEST,
    size: manifest.length,
    digest: referrerDigest,
    artifactType: BUNDLE_V03,
  });
  const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  await opts.writer.pushManifest(opts.repository, tag, index, OCI_INDEX);
  return { referrerDigest };
}
