import { gunzipSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { computeDigest, MediaType } from "../oci/index.ts";
import {
  createTar,
  createTinyImage,
  OCI_CONFIG_MEDIA_TYPE,
  OCI_LAYER_GZIP_MEDIA_TYPE,
} from "./tiny-image.ts";

describe("createTar", () => {
  it("writes one ustar file: header, content padded to 512, two zero blocks; digest pinned", () => {
    const tar = createTar("hello.txt", Buffer.from("hello\n"));
    expect(tar.length).toBe(512 + 512 + 1024);
    expect(tar.subarray(0, 9).toString()).toBe("hello.txt");
    expect(tar.subarray(124, 135).toString()).toBe("00000000006"); // size, octal
    expect(tar.subarray(257, 262).toString()).toBe("ustar");
    expect(tar.subarray(512, 518).toString()).toBe("hello\n");
    expect(tar.subarray(1024).every((b) => b === 0)).toBe(true);
    // The header checksum: the sum of the header bytes with the checksum field read as spaces.
    const header = Buffer.from(tar.subarray(0, 512));
    const stored = Number.parseInt(header.subarray(148, 154).toString(), 8);
    header.fill(" ", 148, 156);
    expect(stored).toBe(header.reduce((sum, b) => sum + b, 0));
    // Pure function of its inputs (GNU tar lists it as -rw-r--r-- root/root 6 1970-01-01 hello.txt).
    expect(computeDigest(tar)).toBe(
      "sha256:8b3e3d7ec1c0eada9688a482a45623e3bcbdb071f7a4701f4209c324438d4cd6",
    );
  });

  it("refuses a name that does not fit the ustar header", () => {
    expect(() => createTar("x".repeat(101), Buffer.alloc(0))).toThrow(/too long/);
  });
});

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
        mediaType: OCI_CONFIG_MEDIA_TYPE,
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
