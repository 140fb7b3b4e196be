import { Pool } from "undici";
import {
  legacySignatureConfig,
  legacySignatureLayer,
  legacySignatureManifest,
  RegistryWriter,
  type SignatureLayer,
  type SigningKey,
  simpleSigningPayload,
} from "../src/local/index.ts";
import { computeDigest, MediaType } from "../src/oci/index.ts";
import { legacySignatureTag } from "../src/verify/index.ts";

const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

export type SmallImage = {
  repository: string;
  /** The tag it was pushed under; undefined when pushed by digest only. */
  tag: string | undefined;
  digest: string;
  manifestBytes: Buffer;
};

/** The 512-byte layer blob and the image config every small image of a repository shares. */
const SHARED_LAYER = Buffer.alloc(512, 0x2a);
const SHARED_CONFIG = Buffer.from(
  JSON.stringify({
    architecture: "amd64",
    os: "linux",
    config: {},
    rootfs: { type: "layers", diff_ids: [computeDigest(SHARED_LAYER)] },
  }),
);

/** A small image manifest (shared config and layer) made unique by the annotation `label`. */
function smallManifest(label: string): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {
        mediaType: MediaType.ociConfig,
        size: SHARED_CONFIG.length,
        digest: computeDigest(SHARED_CONFIG),
      },
      layers: [{ mediaType: OCI_LAYER, size: SHARED_LAYER.length, digest: computeDigest(SHARED_LAYER) }],
      annotations: { "dev.pullgate.bench": label },
    }),
  );
}

/**
 * A bare push client on one keep-alive pool: a blob is POST + PUT (no existence check), a manifest one PUT,
 * so that thousands of images push in seconds. close() the pool when done.
 */
function fastWriter(url: string, connections: number): { writer: RegistryWriter; close(): Promise<void> } {
  const pool = new Pool(url, { connections, pipelining: 1, keepAliveTimeout: 30_000 });
  return {
    writer: new RegistryWriter(url, { dispatcher: pool, skipExistingBlobs: false }),
    close: () => pool.close(),
  };
}

/** The signature layer of one image's `.sig` manifest: the payload's descriptor and its annotations. */
export type SignLayer = (payload: Buffer, payloadDigest: string) => SignatureLayer | Promise<SignatureLayer>;

/**
 * `count` distinct small images in `repository`, each signed the cosign legacy way by `key`: a
 * `sha256-<hex>.sig` manifest with one simplesigning payload layer, as `signLegacy()` writes it, except that
 * every `.sig` manifest of the set shares one config blob (pullgate reads only the layers) — so one image is 4
 * requests: its manifest, the payload blob (POST + PUT) and the `.sig` manifest. Images are tagged
 * `<tagPrefix><i>` when `tagPrefix` is given, else pushed by digest only. `parallel` pushes at a time over one
 * connection pool.
 */
export function pushSignedImages(opts: {
  registryUrl: string;
  repository: string;
  /** Makes the digests of this set differ from every other set's. */
  label: string;
  count: number;
  key: SigningKey;
  tagPrefix?: string;
  parallel?: number;
}): Promise<SmallImage[]> {
  const { key, ...rest } = opts;
  return pushImagesSignedBy({
    ...rest,
    signLayer: (payload, payloadDigest) => legacySignatureLayer(payload, payloadDigest, key),
  });
}

/** pushSignedImages() with the `.sig` layer made by `signLayer` (a keyless signer, say). */
export async function pushImagesSignedBy(opts: {
  registryUrl: string;
  repository: string;
  label: string;
  count: number;
  signLayer: SignLayer;
  tagPrefix?: string;
  parallel?: number;
}): Promise<SmallImage[]> {
  const parallel = opts.parallel ?? 16;
  const { writer, close } = fastWriter(opts.registryUrl, parallel);
  const { repository } = opts;
  const ociManifest = MediaType.ociManifest;
  try {
    await writer.pushBlob(repository, SHARED_LAYER);
    await writer.pushBlob(repository, SHARED_CONFIG);
    const sigConfig = legacySignatureConfig([]);
    const sigConfigDigest = await writer.pushBlob(repository, sigConfig);
    const images: SmallImage[] = new Array(opts.count);
    let next = 0;
    const worker = async () => {
      while (next < opts.count) {
        const i = next++;
        const tag = opts.tagPrefix === undefined ? undefined : `${opts.tagPrefix}${i}`;
        const manifest = smallManifest(`${opts.label}${i}`);
        const digest = computeDigest(manifest);
        await writer.pushManifest(repository, tag ?? digest, manifest, ociManifest);
        const payload = simpleSigningPayload(digest);
        const payloadDigest = await writer.pushBlob(repository, payload);
        const layers = [await opts.signLayer(payload, payloadDigest)];
        const sig = legacySignatureManifest(layers, sigConfig, sigConfigDigest);
        await writer.pushManifest(repository, legacySignatureTag(digest), sig, ociManifest);
        images[i] = { repository, tag, digest, manifestBytes: manifest };
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    return images;
  } finally {
    await close();
  }
}

/** One unsigned small image under `repository:tag`. */
export async function pushUnsignedImage(opts: {
  registryUrl: string;
  repository: string;
  tag: string;
  label: string;
}): Promise<SmallImage> {
  const { writer, close } = fastWriter(opts.registryUrl, 1);
  try {
    await writer.pushBlob(opts.repository, SHARED_LAYER);
    await writer.pushBlob(opts.repository, SHARED_CONFIG);
    const manifest = smallManifest(opts.label);
    await writer.pushManifest(opts.repository, opts.tag, manifest, MediaType.ociManifest);
    return {
      repository: opts.repository,
      tag: opts.tag,
      digest: computeDigest(manifest),
      manifestBytes: manifest,
    };
  } finally {
    await close();
  }
}
