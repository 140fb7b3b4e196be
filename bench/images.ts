import { createHash } from "node:crypto";
import { RegistryWriter, signLegacy, type TestKey } from "../test/support/signer.ts";

const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const OCI_CONFIG = "application/vnd.oci.image.config.v1+json";
const OCI_LAYER = "application/vnd.oci.image.layer.v1.tar";

export type SmallImage = {
  repository: string;
  tag: string;
  digest: string;
  manifestBytes: Buffer;
};

function sha256(data: Uint8Array | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/**
 * Pushes a small image straight over the distribution push API (no skopeo): one 512-byte layer blob shared by
 * every image of the repository, a config blob whose label `label` makes the digest unique, and the OCI manifest
 * under `tag`.
 */
export async function pushSmallImage(
  writer: RegistryWriter,
  repository: string,
  tag: string,
  label: string,
): Promise<SmallImage> {
  const layer = Buffer.alloc(512, 0x2a);
  const layerDigest = await writer.pushBlob(repository, layer);
  const config = Buffer.from(
    JSON.stringify({
      architecture: "amd64",
      os: "linux",
      config: { Labels: { "dev.pullgate.bench": label } },
      rootfs: { type: "layers", diff_ids: [sha256(layer)] },
    }),
  );
  const configDigest = await writer.pushBlob(repository, config);
  const manifestBytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI_MANIFEST,
      config: { mediaType: OCI_CONFIG, size: config.length, digest: configDigest },
      layers: [{ mediaType: OCI_LAYER, size: layer.length, digest: layerDigest }],
    }),
  );
  const digest = await writer.pushManifest(repository, tag, manifestBytes, OCI_MANIFEST);
  return { repository, tag, digest, manifestBytes };
}

/**
 * `count` distinct small images `<repository>:<prefix><i>`, each signed the legacy cosign way by `key`
 * (`<repository>:sha256-<hex>.sig`), pushed `parallel` at a time.
 */
export async function pushSignedImages(opts: {
  registryUrl: string;
  repository: string;
  prefix: string;
  count: number;
  key: TestKey;
  parallel?: number;
}): Promise<SmallImage[]> {
  const writer = new RegistryWriter(opts.registryUrl);
  // The shared layer first, so that the parallel pushes find it instead of all uploading it.
  const first = await pushSmallImage(writer, opts.repository, `${opts.prefix}0`, `${opts.prefix}0`);
  await signLegacy({ writer, repository: opts.repository, digest: first.digest, key: opts.key });
  const images: SmallImage[] = new Array(opts.count);
  images[0] = first;
  let next = 1;
  const worker = async () => {
    while (next < opts.count) {
      const i = next++;
      const image = await pushSmallImage(writer, opts.repository, `${opts.prefix}${i}`, `${opts.prefix}${i}`);
      await signLegacy({ writer, repository: opts.repository, digest: image.digest, key: opts.key });
      images[i] = image;
    }
  };
  await Promise.all(Array.from({ length: opts.parallel ?? 8 }, worker));
  return images;
}
