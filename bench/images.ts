import { createHash } from "node:crypto";
import { Pool } from "undici";
import {
  legacySignatureConfig,
  legacySignatureLayer,
  legacySignatureManifest,
  simpleSigningPayload,
  type TestKey,
} from "../test/support/signer.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

export type SmallImage = {
  repository: string;
  /** The tag it was pushed under; undefined when pushed by digest only. */
  tag: string | undefined;
  digest: string;
  manifestBytes: Buffer;
};

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** The 512-byte layer blob and the image config every small image of a repository shares. */
const SHARED_LAYER = Buffer.alloc(512, 0x2a);
const SHARED_CONFIG = Buffer.from(
  JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [sha256(SHARED_LAYER)] },
  }),
);

/** A small image manifest (shared config and layer) made unique by the annotation `label`. */
function smallManifest(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: SHARED_CONFIG.length, digest: sha256(SHARED_CONFIG) },
      layers: [{ mediaType: OCI_LAYER, size: SHARED_LAYER.length, digest: sha256(SHARED_LAYER) }],
      annotations: { "dev.pullgate.bench": label },
    }),
  );
}

/**
 * A bare push client on one keep-alive pool: a blob is POST + PUT (no existence check), a manifest one PUT.
 * RegistryWriter's requests minus its checks, so that thousands of images push in seconds.
 */
class FastPusher {
  readonly #pool: Pool;
  constructor(url: string, connections: number) {
    this.#pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  }

  async blob(repository: string, bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    const start = await this.#pool.request({ path: `/v2/${repository}/blobs/uploads/`, method: "POST" });
    await start.body.dump();
    const location = start.headers.location;
    if (start.statusCode !== 202 || typeof location !== "string")
      throw new Error(`blob upload start in ${repository}: ${start.statusCode}`);
    const url = new URL(location, "http://registry.invalid");
    url.searchParams.set("digest", digest);
    const put = await this.#pool.request({
      path: `${url.pathname}${url.search}`,
      method: "PUT",
      headers: { "content-type": "application/octet-stream", "content-length": String(bytes.length) },
      body: bytes,
    });
    const text = await put.body.text();
    if (put.statusCode !== 201) throw new Error(`blob upload in ${repository}: ${put.statusCode} ${text}`);
    return digest;
  }

  async manifest(repository: string, reference: string, bytes: Buffer): Promise<void> {
    const res = await this.#pool.request({
      path: `/v2/${repository}/manifests/${reference}`,
      method: "PUT",
      headers: { "content-type": OCI_MANIFEST, "content-length": String(bytes.length) },
      body: bytes,
    });
    const text = await res.body.text();
    if (res.statusCode !== 201)
      throw new Error(`manifest push ${repository}:${reference}: ${res.statusCode} ${text}`);
  }

  close(): Promise<void> {
    return this.#pool.close();
  }
}

/**
 * `count` distinct small images in `repository`, each signed the cosign legacy way by `key`: a
 * `sha256-<hex>.sig` manifest with one simplesigning payload layer, as `signLegacy()` writes it, except that
 * every `.sig` manifest of the set shares one config blob (pullgate reads only the layers) — so one image is 4
 * requests: its manifest, the payload blob (POST + PUT) and the `.sig` manifest. Images are tagged
 * `<tagPrefix><i>` when `tagPrefix` is given, else pushed by digest only. `parallel` pushes at a time over one
 * connection pool.
 */
export async function pushSignedImages(opts: {
  registryUrl: string;
  repository: string;
  /** Makes the digests of this set differ from every other set's. */
  label: string;
  count: number;
  key: TestKey;
  tagPrefix?: string;
  parallel?: number;
}): Promise<SmallImage[]> {
  const parallel = opts.parallel ?? 16;
  const pusher = new FastPusher(opts.registryUrl, parallel);
  const { repository } = opts;
  try {
    await pusher.blob(repository, SHARED_LAYER);
    await pusher.blob(repository, SHARED_CONFIG);
    const sigConfig = legacySignatureConfig([]);
    const sigConfigDigest = await pusher.blob(repository, sigConfig);
    const images: SmallImage[] = new Array(opts.count);
    let next = 0;
    const worker = async () => {
      while (next < opts.count) {
        const i = next++;
        const tag = opts.tagPrefix === undefined ? undefined : `${opts.tagPrefix}${i}`;
        const manifest = smallManifest(`${opts.label}${i}`);
        const digest = sha256(manifest);
        await pusher.manifest(repository, tag ?? digest, manifest);
        const payload = simpleSigningPayload(digest);
        const payloadDigest = await pusher.blob(repository, payload);
        const layers = [legacySignatureLayer(payload, payloadDigest, opts.key)];
        const sig = legacySignatureManifest(layers, sigConfig, sigConfigDigest);
        await pusher.manifest(repository, `sha256-${digest.slice("sha256:".length)}.sig`, sig);
        images[i] = { repository, tag, digest, manifestBytes: manifest };
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return images;
  } finally {
    await pusher.close();
  }
}

/** One unsigned small image under `repository:tag`. */
export async function pushUnsignedImage(opts: {
  registryUrl: string;
  repository: string;
  tag: string;
  label: string;
}): Promise<SmallImage> {
  const pusher = new FastPusher(opts.registryUrl, 1);
  try {
    await pusher.blob(opts.repository, SHARED_LAYER);
    await pusher.blob(opts.repository, SHARED_CONFIG);
    const manifest = smallManifest(opts.label);
    await pusher.manifest(opts.repository, opts.tag, manifest);
    return { repository: opts.repository, tag: opts.tag, digest: sha256(manifest), manifestBytes: manifest };
  } finally {
    await pusher.close();
  }
}
