import { gzipSync } from "node:zlib";
import { computeDigest, type Digest, MediaType } from "../oci/index.ts";
import { createTar } from "./tar.ts";

/**
 * A tiny, deterministic single-layer OCI image built in memory: one small text file in a ustar
 * archive, gzipped (no file name, mtime 0), an image config whose diff_id is the tar's digest, and
 * the manifest over both. Same inputs, same bytes, same digests.
 */

export const OCI_LAYER_GZIP_MEDIA_TYPE = "application/vnd.oci.image.layer.v1.tar+gzip";

export interface Blob {
  digest: Digest;
  bytes: Buffer;
}

/** Blobs to upload first, then the manifest (what a push is made of). */
export interface BuiltArtifact {
  blobs: readonly Blob[];
  manifest: Buffer;
  manifestDigest: Digest;
  manifestMediaType: string;
}

export interface TinyImage extends BuiltArtifact {
  config: Blob;
  layer: Blob;
  /** sha256 of the uncompressed tar (the config's rootfs.diff_ids[0]). */
  diffId: Digest;
}

/** How a manifest points at a blob. */
export interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
}

/** An OCI image manifest over a config and layers (compact JSON). */
export function ociImageManifest(config: Descriptor, layers: readonly Descriptor[]): Buffer {
  return Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociManifest, config, layers }));
}

function blobOf(bytes: Buffer): Blob {
  return { digest: computeDigest(bytes), bytes };
}

/** An image with one file, `fileName`, holding `text`; the text makes images differ. */
export function createTinyImage(fileName: string, text: string): TinyImage {
  const tar = createTar(fileName, Buffer.from(text, "utf8"));
  const diffId = computeDigest(tar);
  const layer = blobOf(gzipSync(tar, { level: 9 }));
  const config = blobOf(
    Buffer.from(
      JSON.stringify({
        created: "1970-01-01T00:00:00Z",
        architecture: "amd64",
        os: "linux",
        config: { Cmd: [`/${fileName}`] },
        rootfs: { type: "layers", diff_ids: [diffId] },
        history: [{ created: "1970-01-01T00:00:00Z", created_by: "pullgate demo" }],
      }),
    ),
  );
  const manifest = ociImageManifest(
    { mediaType: MediaType.ociConfig, digest: config.digest, size: config.bytes.length },
    [{ mediaType: OCI_LAYER_GZIP_MEDIA_TYPE, digest: layer.digest, size: layer.bytes.length }],
  );
  return {
    blobs: [layer, config],
    config,
    layer,
    diffId,
    manifest,
    manifestDigest: computeDigest(manifest),
    manifestMediaType: MediaType.ociManifest,
  };
}
