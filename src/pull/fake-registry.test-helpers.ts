import { createHash, randomUUID } from "node:crypto";
import type { MockAgent } from "undici";
import {
  bundleReferrerManifest,
  createLegacySignature,
  makeBundle,
  ociImageManifest,
  referrersIndexWith,
  type SigningKey,
  signatureLayersOf,
} from "../local/index.ts";
import { parseDigest } from "../oci/index.ts";
import { legacySignatureTag } from "../verify/index.ts";

/**
 * A distribution-like registry behind an undici MockAgent, for unit tests of pull/ and admin/: it
 * serves what tests push (manifests by tag and digest, blobs, the referrers API computed from
 * `subject`), records every request so tests can count round trips, and answers forced statuses.
 */

export const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
export const OCI_INDEX = "application/vnd.oci.image.index.v1+json";
export const SIMPLESIGNING = "application/vnd.dev.cosign.simplesigning.v1+json";
const PATH_RE = /^\/v2\/(.+)\/(manifests|blobs|referrers)\/([^/?]+)(?:\?(.*))?$/;

export function sha256(bytes: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
}

export function hexOf(digest: string): string {
  return digest.slice(digest.indexOf(":") + 1);
}

interface StoredManifest {
  bytes: Buffer;
  contentType: string;
}

interface Failure {
  match: RegExp;
  status: number;
  remaining: number;
}

export class FakeRegistry {
  /** Every request received, in order ("GET /v2/…"). */
  readonly requests: string[] = [];
  /** false: /referrers/ answers 404 (distribution 2.8), so clients use the referrers tag schema. */
  referrersApi = true;
  readonly #manifests = new Map<string, StoredManifest>();
  readonly #blobs = new Map<string, Buffer>();
  readonly #referrers = new Map<string, Buffer>();
  readonly #failures: Failure[] = [];

  constructor(agent: MockAgent, origin: string) {
    agent
      .get(origin)
      .intercept({ path: () => true, method: () => true })
      .reply((opts) => this.#answer(opts.method, opts.path))
      .persist();
  }

  /** Answers `status` to requests whose "METHOD path" matches, `times` times (default: always). */
  fail(match: RegExp, status: number, times = Number.POSITIVE_INFINITY): void {
    this.#failures.push({ match, status, remaining: times });
  }

  /** How many requests matched. */
  count(match: RegExp): number {
    return this.requests.filter((r) => match.test(r)).length;
  }

  putBlob(repository: string, bytes: Buffer): string {
    const digest = sha256(bytes);
    this.#blobs.set(`${repository}@${digest}`, bytes);
    return digest;
  }

  /** Serves `bytes` for a blob digest they do not hash to (a corrupt or lying registry). */
  putBlobAt(repository: string, digest: string, bytes: Buffer): void {
    this.#blobs.set(`${repository}@${digest}`, bytes);
  }

  /** Stores a manifest under its digest, and under `tag` when given; returns the digest. */
  putManifest(repository: string, tag: string | undefined, body: unknown, contentType?: string): string {
    const bytes = Buffer.isBuffer(body) ? body : Buffer.from(JSON.stringify(body));
    const type = contentType ?? mediaTypeOf(bytes) ?? OCI_MANIFEST;
    const digest = sha256(bytes);
    this.#manifests.set(`${repository}:${digest}`, { bytes, contentType: type });
    if (tag !== undefined) this.#manifests.set(`${repository}:${tag}`, { bytes, contentType: type });
    return digest;
  }

  /** Serves `bytes` under a reference they do not hash to. */
  putManifestAt(repository: string, reference: string, bytes: Buffer, contentType = OCI_MANIFEST): void {
    this.#manifests.set(`${repository}:${reference}`, { bytes, contentType });
  }

  getManifest(repository: string, reference: string): Buffer | undefined {
    return this.#manifests.get(`${repository}:${reference}`)?.bytes;
  }

  /** Replaces the referrers API answer for a digest (instead of computing it from `subject`). */
  setReferrers(repository: string, digest: string, descriptors: unknown[]): void {
    this.#referrers.set(
      `${repository}@${digest}`,
      Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: descriptors })),
    );
  }

  #answer(method: string, path: string) {
    const line = `${method} ${path}`;
    this.requests.push(line);
    const failure = this.#failures.find((f) => f.remaining > 0 && f.match.test(line));
    if (failure) {
      failure.remaining--;
      return json(failure.status, { errors: [{ code: "UNAVAILABLE", message: `forced ${failure.status}` }] });
    }
    const m = PATH_RE.exec(path);
    if (!m) return json(404, { errors: [{ code: "NAME_UNKNOWN", message: "unknown path" }] });
    const [, repository, kind, reference, query] = m as unknown as [string, string, string, string, string?];
    const head = method === "HEAD";
    if (kind === "manifests") {
      const found = this.#manifests.get(`${repository}:${reference}`);
      if (!found) return json(404, { errors: [{ code: "MANIFEST_UNKNOWN", message: "manifest unknown" }] });
      return {
        statusCode: 200,
        data: head ? "" : found.bytes,
        responseOptions: {
          headers: {
            "content-type": found.contentType,
            "content-length": String(found.bytes.length),
            "docker-content-digest": sha256(found.bytes),
          },
        },
      };
    }
    if (kind === "blobs") {
      const found = this.#blobs.get(`${repository}@${reference}`);
      if (!found) return json(404, { errors: [{ code: "BLOB_UNKNOWN", message: "blob unknown" }] });
      return {
        statusCode: 200,
        data: head ? "" : found,
        responseOptions: {
          headers: {
            "content-type": "application/octet-stream",
            "content-length": String(found.length),
            "docker-content-digest": reference,
          },
        },
      };
    }
    if (!this.referrersApi) return { statusCode: 404, data: "404 page not found\n" };
    const bytes =
      this.#referrers.get(`${repository}@${reference}`) ?? this.#referrersOf(repository, reference, query);
    return { statusCode: 200, data: bytes, responseOptions: { headers: { "content-type": OCI_INDEX } } };
  }

  #referrersOf(repository: string, digest: string, query: string | undefined): Buffer {
    const wanted = new URLSearchParams(query ?? "").get("artifactType");
    const manifests: unknown[] = [];
    for (const [key, stored] of this.#manifests) {
      if (!key.startsWith(`${repository}:sha256:`)) continue;
      const m = JSON.parse(stored.bytes.toString()) as {
        subject?: { digest?: string };
        artifactType?: string;
        config?: { mediaType?: string };
      };
      if (m.subject?.digest !== digest) continue;
      const artifactType = m.artifactType ?? m.config?.mediaType;
      if (wanted !== null && artifactType !== wanted) continue;
      manifests.push({
        mediaType: OCI_MANIFEST,
        size: stored.bytes.length,
        digest: sha256(stored.bytes),
        artifactType,
      });
    }
    return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests }));
  }
}

function json(statusCode: number, body: unknown) {
  return {
    statusCode,
    data: JSON.stringify(body),
    responseOptions: { headers: { "content-type": "application/json" } },
  };
}

function mediaTypeOf(bytes: Buffer): string | undefined {
  try {
    const t = (JSON.parse(bytes.toString()) as { mediaType?: unknown }).mediaType;
    return typeof t === "string" ? t : undefined;
  } catch {
    return undefined;
  }
}

export interface PushedImage {
  digest: string;
  bytes: Buffer;
  size: number;
  configDigest: string;
  layerDigest: string;
}

/** A runnable single-platform image (config + one layer), unique per call. */
export function pushImage(registry: FakeRegistry, repository: string, tag?: string): PushedImage {
  const config = Buffer.from(JSON.stringify({ architecture: "amd64", os: "linux", nonce: randomUUID() }));
  const layer = Buffer.from(`layer ${randomUUID()}`);
  const configDigest = registry.putBlob(repository, config);
  const layerDigest = registry.putBlob(repository, layer);
  const bytes = ociImageManifest(
    { mediaType: "application/vnd.oci.image.config.v1+json", size: config.length, digest: configDigest },
    [{ mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", size: layer.length, digest: layerDigest }],
  );
  const digest = registry.putManifest(repository, tag, bytes, OCI_MANIFEST);
  return { digest, bytes, size: bytes.length, configDigest, layerDigest };
}

/** A multi-platform index listing `children`. */
export function pushIndex(
  registry: FakeRegistry,
  repository: string,
  tag: string | undefined,
  children: readonly PushedImage[],
): { digest: string; bytes: Buffer } {
  const index = {
    schemaVersion: 2,
    mediaType: OCI_INDEX,
    manifests: children.map((c, i) => ({
      mediaType: OCI_MANIFEST,
      size: c.size,
      digest: c.digest,
      platform: { architecture: i === 0 ? "amd64" : "arm64", os: "linux" },
    })),
  };
  const bytes = Buffer.from(JSON.stringify(index));
  return { digest: registry.putManifest(repository, tag, bytes, OCI_INDEX), bytes };
}

/**
 * cosign's legacy layout in the fake registry: a simplesigning payload naming `payloadDigest ?? digest`,
 * signed by `key`, as a layer of `<repository>:sha256-<hex>.sig` (appended when the tag exists).
 */
export function fakeLegacySignature(
  registry: FakeRegistry,
  repository: string,
  digest: string,
  key: SigningKey,
  opts: { payloadDigest?: string; dockerReference?: string } = {},
): { payload: Buffer; payloadDigest: string; sigDigest: string; sigBytes: Buffer } {
  const tag = legacySignatureTag(parseDigest(digest));
  const signature = createLegacySignature({
    manifestDigest: digest,
    key,
    ...opts,
    existingLayers: signatureLayersOf(registry.getManifest(repository, tag)),
  });
  for (const blob of signature.blobs) registry.putBlob(repository, blob.bytes);
  const sigDigest = registry.putManifest(repository, signature.tag, signature.manifest, OCI_MANIFEST);
  return {
    payload: signature.payload,
    payloadDigest: signature.payloadDigest,
    sigDigest,
    sigBytes: signature.manifest,
  };
}

/**
 * cosign v3's layout in the fake registry: a Sigstore bundle as an OCI 1.1 referrer of `digest` (found
 * through the referrers API), also listed in the referrers tag schema index `sha256-<hex>` when `tagSchema`.
 */
export function fakeBundleReferrer(
  registry: FakeRegistry,
  repository: string,
  digest: string,
  key: SigningKey,
  opts: {
    tagSchema?: boolean;
    subjectDigest?: string;
    /** The tag-schema index descriptor's artifactType; null leaves it out (cosign v3 on GHCR). */
    descriptorArtifactType?: string | null;
  } = {},
): { referrerDigest: string; referrerBytes: Buffer; bundle: Buffer; bundleDigest: string } {
  const bundle = makeBundle({ digest, key });
  const bundleDigest = registry.putBlob(repository, bundle);
  const emptyDigest = registry.putBlob(repository, Buffer.from("{}"));
  const referrerBytes = bundleReferrerManifest({
    emptyDigest,
    bundle,
    bundleDigest,
    subject: { mediaType: OCI_MANIFEST, size: 0, digest: opts.subjectDigest ?? digest },
  });
  const referrerDigest = registry.putManifest(repository, undefined, referrerBytes, OCI_MANIFEST);
  if (opts.tagSchema) {
    const tag = `sha256-${hexOf(digest)}`;
    registry.putManifest(
      repository,
      tag,
      referrersIndexWith(
        registry.getManifest(repository, tag),
        referrerBytes,
        referrerDigest,
        opts.descriptorArtifactType,
      ),
      OCI_INDEX,
    );
  }
  return { referrerDigest, referrerBytes, bundle, bundleDigest };
}
