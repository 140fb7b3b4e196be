import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { computeDigest, MediaType } from "../oci/index.ts";
import { createTar } from "./tar.ts";
import { createTinyImage, OCI_LAYER_GZIP_MEDIA_TYPE } from "./tiny-image.ts";

describe("createTinyImage", () => {
  it("is deterministic: same inputs, same bytes and digests", () => {
    const a = createTinyImage("hello.txt", "hello\n");
    const b = createTinyImage("hello.txt", "hello\n");
    expect(b.manifest.equals(a.manifest)).toBe(true);
    expect(b.manifestDigest).toBe(a.manifestDigest);
    expect(b.layer.bytes.equals(a.layer.bytes)).toBe(true);
    expect(a.diffId).toBe("sha256:8b3e3d7ec1c0eada9688a482a45623e3bcbdb071f7a4701f4209c324438d4cd6");
    expect(createTinyImage("hello.txt", "other\n").manifestDigest).not.toBe(a.manifestDigest);
  });

  it("builds a consistent OCI image: digests of the exact bytes, diff_id of the uncompressed tar", () => {
    const image = createTinyImage("hello.txt", "hello\n");
    expect(image.manifestDigest).toBe(computeDigest(image.manifest));
    expect(image.manifestMediaType).toBe(MediaType.ociManifest);
    for (const blob of image.blobs) expect(blob.digest).toBe(computeDigest(blob.bytes));
    const tar = gunzipSync(image.layer.bytes);
    expect(tar.equals(createTar("hello.txt", Buffer.from("hello\n")))).toBe(true);
    expect(image.diffId).toBe(computeDigest(tar));

    const manifest = JSON.parse(image.manifest.toString());
    expect(manifest).toEqual({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: {
        mediaType: MediaType.ociConfig,
        digest: image.config.digest,
        size: image.config.bytes.length,
      },
      layers: [
        { mediaType: OCI_LAYER_GZIP_MEDIA_TYPE, digest: image.layer.digest, size: image.layer.bytes.length },
      ],
    });
    const config = JSON.parse(image.config.bytes.toString());
    expect(config.rootfs).toEqual({ type: "layers", diff_ids: [image.diffId] });
    expect(config.os).toBe("linux");
  });
});
