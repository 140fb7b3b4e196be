import { gzipSync } from "node:zlib";
import { computeDigest, type Digest, MediaType } from "../oci/index.ts";

/**
 * A tiny, deterministic single-layer OCI image built in memory: one small text file in a ustar
 * archive, gzipped (no file name, mtime 0), an image config whose diff_id is the tar's digest, and
 * the manifest over both. Same inputs, same bytes, same digests.
 */

export const OCI_CONFIG_MEDIA_TYPE = "application/vnd.oci.image.config.v1+json";
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

function writeOctal(header: Buffer, offset: number, width: number, value: number): void {
  header.write(`${value.toString(8).padStart(width - 1, "0")}\0`, offset, width, "ascii");
}

/** A ustar archive holding one regular file (mode 0644, uid/gid 0, mtime 0) and the two end blocks. */
export function createTar(fileName: string, content: Buffer): Buffer {
  if (Buffer.byteLength(fileName) > 100) throw new Error(`tar file name too long: ${fileName}`);
  const padded = Math.ceil(content.length / 512) * 512;
  const tar = Buffer.alloc(512 + padded + 1024);
  const header = tar.subarray(0, 512);
  header.write(fileName, 0, 100, "utf8");
  writeOctal(header, 100, 8, 0o644);
  writeOctal(header, 108, 8, 0);
  writeOctal(header, 116, 8, 0);
  writeOctal(header, 124, 12, content.length);
  writeOctal(header, 136, 12, 0);
  header.write("        ", 148, 8, "ascii"); // checksum is computed with this field as spaces
  header.write("0", 156, 1, "ascii");
  header.write("ustar\0", 257, 6, "ascii");
  header.write("00", 263, 2, "ascii");
  header.write("root", 265, 32, "ascii");
  header.write("root", 297, 32, "ascii");
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  content.copy(tar, 512);
  return tar;
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
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: OCI_CONFIG_MEDIA_TYPE, digest: config.digest, size: config.bytes.length },
      layers: [{ mediaType: OCI_LAYER_GZIP_MEDIA_TYPE, digest: layer.digest, size: layer.bytes.length }],
    }),
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
