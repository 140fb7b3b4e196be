import { createCipheriv, createHash } from "node:crypto";
import { mkdir, readdir, readFile, stat, symlink, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { createTar, runOk, skopeoEnv } from "../../src/local/index.ts";
import { makeTempDir, removeDir } from "./process.ts";

/**
 * Deterministic OCI image layouts generated in pure Node (no network, no docker), pushed with skopeo.
 *
 * Determinism: layer file content is an AES-256-CTR keystream keyed by sha256(seed) (incompressible, ~600 MB/s,
 * much faster than hashing a counter); tar headers use mtime 0, uid/gid 0, mode 0644; gzip comes from Node's
 * zlib with no file name and mtime 0. Content that is big or incompressible is gzipped at level 0 (stored
 * deflate blocks: still a valid gzip stream, ~0.1 s for 50 MiB instead of ~1.1 s at level 1). All JSON is
 * serialized with JSON.stringify (compact, fixed key order). The same inputs give the same digests on every run.
 */

export const MediaTypes = {
  ociManifest: "application/vnd.oci.image.manifest.v1+json",
  ociIndex: "application/vnd.oci.image.index.v1+json",
  ociConfig: "application/vnd.oci.image.config.v1+json",
  ociLayerGzip: "application/vnd.oci.image.layer.v1.tar+gzip",
  ociLayerTar: "application/vnd.oci.image.layer.v1.tar",
  dockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  dockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  dockerConfig: "application/vnd.docker.container.image.v1+json",
  dockerLayerGzip: "application/vnd.docker.image.rootfs.diff.tar.gzip",
} as const;

export type Platform = { os: string; architecture: string; variant?: string };

/**
 * One layer: a tar with a single regular file. Either pseudo-random content of `size` bytes derived from
 * `seed`, or the given Buffer as the file content (as `layer-<index>.bin`). `gzip: false` stores the tar
 * uncompressed (`application/vnd.oci.image.layer.v1.tar`, OCI media types only; pushImage() keeps it
 * uncompressed thanks to --preserve-digests).
 */
export type LayerSpec = Buffer | { size: number; seed: string; fileName?: string; gzip?: boolean };

export type ManifestFlavour = "oci" | "docker";

export type CreateImageOptions = {
  /** OCI layout directory (created if missing; other tags in it are kept). */
  dir: string;
  /** Tag, stored as `org.opencontainers.image.ref.name` in index.json. */
  tag: string;
  layers: LayerSpec[];
  /** Default linux/amd64. */
  platform?: Platform;
  /** "oci" (default) or "docker" (schema2 manifest, docker config and layer media types). */
  mediaTypes?: ManifestFlavour;
  /** Extra image config labels (a cheap way to make otherwise identical images differ). */
  labels?: Record<string, string>;
};

export type ImageResult = {
  tag: string;
  manifestDigest: string;
  manifestBytes: Buffer;
  manifestMediaType: string;
  configDigest: string;
  configBytes: Buffer;
  configMediaType: string;
  /** Digests and sizes of the layer blobs as stored (compressed when gzipped). */
  layerDigests: string[];
  layerSizes: number[];
  layerMediaTypes: string[];
  /** sha256 of the uncompressed tars (= config rootfs.diff_ids). */
  diffIds: string[];
  platform: Platform;
};

export type CreateIndexOptions = {
  dir: string;
  tag: string;
  /** Default linux/amd64 + linux/arm64/v8. Each child gets one small layer unless `layers` is given. */
  platforms?: Array<Platform & { layers?: LayerSpec[] }>;
  /** "oci" (image index, default) or "docker" (manifest list of schema2 manifests). */
  mediaTypes?: ManifestFlavour;
};

export type IndexResult = {
  tag: string;
  indexDigest: string;
  indexBytes: Buffer;
  indexMediaType: string;
  /** Child manifest digests, same order as `platforms`. */
  childDigests: string[];
  children: ImageResult[];
};

const DEFAULT_PLATFORM: Platform = { os: "linux", architecture: "amd64" };
const EPOCH = "1970-01-01T00:00:00Z";
const CHUNK = 1024 * 1024;
const REF_NAME = "org.opencontainers.image.ref.name";

export function sha256Digest(data: Buffer | string): string {
  return `sha256:${createHash("sha256").update(data).digest("hex")}`;
}

/** Deterministic incompressible bytes: AES-256-CTR keystream with key sha256(seed) and a zero IV. */
export function pseudoRandomBytes(seed: string, size: number): Buffer {
  const out = Buffer.allocUnsafe(size);
  fillPseudoRandom(out, seed);
  return out;
}

function fillPseudoRandom(target: Buffer, seed: string): void {
  const key = createHash("sha256").update(seed).digest();
  const cipher = createCipheriv("aes-256-ctr", key, Buffer.alloc(16));
  const zeros = Buffer.alloc(Math.min(CHUNK, target.length));
  for (let off = 0; off < target.length; off += CHUNK) {
    const n = Math.min(CHUNK, target.length - off);
    cipher.update(n === zeros.length ? zeros : zeros.subarray(0, n)).copy(target, off);
  }
}

async function writeBlob(dir: string, data: Buffer): Promise<string> {
  const digest = sha256Digest(data);
  const path = join(dir, "blobs", "sha256", digest.slice("sha256:".length));
  try {
    if ((await stat(path)).size === data.length) return digest;
  } catch {
    // missing
  }
  await writeFile(path, data);
  return digest;
}

async function initLayout(dir: string): Promise<void> {
  await mkdir(join(dir, "blobs", "sha256"), { recursive: true });
  await writeFile(join(dir, "oci-layout"), `${JSON.stringify({ imageLayoutVersion: "1.0.0" })}\n`);
}

type Descriptor = {
  mediaType: string;
  digest: string;
  size: number;
  platform?: Platform;
  annotations?: Record<string, string>;
};

/** Adds (or replaces) the entry for `tag` in the layout's index.json. */
async function tagInLayout(dir: string, tag: string, desc: Descriptor): Promise<void> {
  const indexPath = join(dir, "index.json");
  let manifests: Descriptor[] = [];
  try {
    const existing = JSON.parse(await readFile(indexPath, "utf8")) as { manifests?: Descriptor[] };
    manifests = (existing.manifests ?? []).filter((m) => m.annotations?.[REF_NAME] !== tag);
  } catch {
    // new layout
  }
  manifests.push({ ...desc, annotations: { [REF_NAME]: tag } });
  await writeFile(indexPath, `${JSON.stringify({ schemaVersion: 2, manifests })}\n`);
}

type BuiltLayer = { digest: string; size: number; mediaType: string; diffId: string };

async function buildLayer(dir: string, spec: LayerSpec, index: number, flavour: ManifestFlavour) {
  let tar: Buffer;
  let gzip = true;
  let level = 0;
  if (Buffer.isBuffer(spec)) {
    tar = createTar(`layer-${index}.bin`, spec);
    level = spec.length <= CHUNK ? 6 : 0;
  } else {
    const name =
      spec.fileName ?? `layer-${createHash("sha256").update(spec.seed).digest("hex").slice(0, 12)}.bin`;
    tar = createTar(name, { sizeBytes: spec.size, writeInto: (c) => fillPseudoRandom(c, spec.seed) });
    gzip = spec.gzip ?? true;
  }
  if (!gzip && flavour === "docker")
    throw new Error("uncompressed layers are only supported with OCI media types");
  const diffId = sha256Digest(tar);
  const blob = gzip ? gzipSync(tar, { level }) : tar;
  const digest = await writeBlob(dir, blob);
  const mediaType =
    flavour === "docker"
      ? MediaTypes.dockerLayerGzip
      : gzip
        ? MediaTypes.ociLayerGzip
        : MediaTypes.ociLayerTar;
  const layer: BuiltLayer = { digest, size: blob.length, mediaType, diffId };
  return layer;
}

/** Writes the blobs of one image (layers, config, manifest) without tagging it. */
async function buildImage(opts: Omit<CreateImageOptions, "tag">, tag: string): Promise<ImageResult> {
  const flavour = opts.mediaTypes ?? "oci";
  const platform = opts.platform ?? DEFAULT_PLATFORM;
  await initLayout(opts.dir);
  const layers: BuiltLayer[] = [];
  for (const [i, spec] of opts.layers.entries()) layers.push(await buildLayer(opts.dir, spec, i, flavour));

  const config = {
    created: EPOCH,
    architecture: platform.architecture,
    ...(platform.variant ? { variant: platform.variant } : {}),
    os: platform.os,
    config: {
      Env: ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
      Cmd: ["/bin/true"],
      ...(opts.labels ? { Labels: opts.labels } : {}),
    },
    rootfs: { type: "layers", diff_ids: layers.map((l) => l.diffId) },
    history: layers.map((_, i) => ({ created: EPOCH, created_by: `pullgate test layer ${i}` })),
  };
  const configBytes = Buffer.from(JSON.stringify(config));
  const configDigest = await writeBlob(opts.dir, configBytes);
  const configMediaType = flavour === "docker" ? MediaTypes.dockerConfig : MediaTypes.ociConfig;
  const manifestMediaType = flavour === "docker" ? MediaTypes.dockerManifest : MediaTypes.ociManifest;
  const manifest = {
    schemaVersion: 2,
    mediaType: manifestMediaType,
    config: { mediaType: configMediaType, digest: configDigest, size: configBytes.length },
    layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
  };
  const manifestBytes = Buffer.from(JSON.stringify(manifest));
  const manifestDigest = await writeBlob(opts.dir, manifestBytes);
  return {
    tag,
    manifestDigest,
    manifestBytes,
    manifestMediaType,
    configDigest,
    configBytes,
    configMediaType,
    layerDigests: layers.map((l) => l.digest),
    layerSizes: layers.map((l) => l.size),
    layerMediaTypes: layers.map((l) => l.mediaType),
    diffIds: layers.map((l) => l.diffId),
    platform,
  };
}

/** Creates a single-platform image in the OCI layout `dir` under `tag`. */
export async function createImage(opts: CreateImageOptions): Promise<ImageResult> {
  const image = await buildImage(opts, opts.tag);
  await tagInLayout(opts.dir, opts.tag, {
    mediaType: image.manifestMediaType,
    digest: image.manifestDigest,
    size: image.manifestBytes.length,
  });
  return image;
}

/** createImage() with Docker schema2 media types (manifest, config `...container.image.v1+json`, gzip layers). */
export function createDockerSchema2Image(opts: Omit<CreateImageOptions, "mediaTypes">): Promise<ImageResult> {
  return createImage({ ...opts, mediaTypes: "docker" });
}

/** Creates a multi-platform image index (or Docker manifest list) with one child image per platform. */
export async function createIndex(opts: CreateIndexOptions): Promise<IndexResult> {
  const flavour = opts.mediaTypes ?? "oci";
  const platforms = opts.platforms ?? [
    { os: "linux", architecture: "amd64" },
    { os: "linux", architecture: "arm64", variant: "v8" },
  ];
  const children: ImageResult[] = [];
  for (const p of platforms) {
    const platform: Platform = {
      os: p.os,
      architecture: p.architecture,
      ...(p.variant ? { variant: p.variant } : {}),
    };
    const name = [p.os, p.architecture, p.variant].filter(Boolean).join("-");
    const layers = p.layers ?? [{ size: 4096, seed: `${opts.tag}/${name}` }];
    children.push(await buildImage({ dir: opts.dir, layers, platform, mediaTypes: flavour }, opts.tag));
  }
  const indexMediaType = flavour === "docker" ? MediaTypes.dockerManifestList : MediaTypes.ociIndex;
  const index = {
    schemaVersion: 2,
    mediaType: indexMediaType,
    manifests: children.map((c) => ({
      mediaType: c.manifestMediaType,
      digest: c.manifestDigest,
      size: c.manifestBytes.length,
      platform: c.platform,
    })),
  };
  const indexBytes = Buffer.from(JSON.stringify(index));
  const indexDigest = await writeBlob(opts.dir, indexBytes);
  await tagInLayout(opts.dir, opts.tag, {
    mediaType: indexMediaType,
    digest: indexDigest,
    size: indexBytes.length,
  });
  return {
    tag: opts.tag,
    indexDigest,
    indexBytes,
    indexMediaType,
    childDigests: children.map((c) => c.manifestDigest),
    children,
  };
}

export type PushImageOptions = {
  layoutDir: string;
  tag: string;
  /** "127.0.0.1:PORT/proj/app:v1" (no transport prefix). */
  dest: string;
  /** Copy every child of an index. Default: true when `tag` is an index in the layout, else false. */
  all?: boolean;
  /** "user:pass" for the destination registry. */
  creds?: string;
};

/**
 * Pushes `oci:<layoutDir>:<tag>` to `docker://<dest>` with skopeo over plain HTTP.
 *
 * Digest preservation (skopeo 1.9.3 -> distribution 2.8.2, verified with `skopeo inspect --raw | sha256sum`):
 *  - OCI manifests/indexes, gzip layers: pushed byte for byte, with or without --preserve-digests.
 *  - Uncompressed (`...layer.v1.tar`) layers: WITHOUT --preserve-digests skopeo gzips them for the registry
 *    and writes a new manifest (new digest); WITH it, the layer and manifest stay as generated.
 *  - An index copied without --all: skopeo pushes only the host platform's child manifest under the tag
 *    (even with --preserve-digests, no error), hence `all` defaults to true for indexes.
 *  - Docker schema2 manifests/lists cannot come from `oci:` (see makeDirTransport); from `dir:` they are
 *    pushed unchanged.
 * `--insecure-policy` avoids depending on /etc/containers/policy.json; `--dest-no-creds` keeps a developer's
 * auth.json out of the way when no creds are given.
 */
export async function pushImage(opts: PushImageOptions): Promise<void> {
  const desc = await findInLayout(opts.layoutDir, opts.tag);
  const isIndex = desc.mediaType === MediaTypes.ociIndex || desc.mediaType === MediaTypes.dockerManifestList;
  const all = opts.all ?? isIndex;
  const isDocker =
    desc.mediaType === MediaTypes.dockerManifest || desc.mediaType === MediaTypes.dockerManifestList;
  const dirTransport = isDocker ? await makeDirTransport(opts.layoutDir, desc) : undefined;
  try {
    await skopeoCopy(opts, all, dirTransport ? `dir:${dirTransport}` : `oci:${opts.layoutDir}:${opts.tag}`);
  } finally {
    if (dirTransport) await removeDir(dirTransport);
  }
}

async function skopeoCopy(opts: PushImageOptions, all: boolean, source: string): Promise<void> {
  const args = [
    "--insecure-policy",
    "copy",
    "--quiet",
    "--preserve-digests",
    "--dest-tls-verify=false",
    ...(opts.creds ? ["--dest-creds", opts.creds] : ["--dest-no-creds"]),
    ...(all ? ["--all"] : []),
    source,
    `docker://${opts.dest}`,
  ];
  await runOk("skopeo", args, { env: skopeoEnv(), timeoutMs: 120_000 });
}

async function findInLayout(dir: string, tag: string): Promise<Descriptor> {
  const index = JSON.parse(await readFile(join(dir, "index.json"), "utf8")) as { manifests?: Descriptor[] };
  const desc = index.manifests?.find((m) => m.annotations?.[REF_NAME] === tag);
  if (!desc) throw new Error(`tag ${tag} not found in ${dir}/index.json`);
  return desc;
}

/**
 * skopeo 1.9.3's `oci:` transport only finds index.json entries with OCI media types ("no descriptor found
 * for reference"), so Docker schema2 images / manifest lists are pushed from a `dir:` transport directory
 * instead: `version`, `manifest.json` (top-level manifest), `<hex>.manifest.json` per list child, and one
 * file per blob named by its hex digest (symlinks into the layout here). c/image guesses the manifest type
 * from its `mediaType` field and pushes the bytes unchanged.
 */
async function makeDirTransport(layoutDir: string, desc: Descriptor): Promise<string> {
  const dir = await makeTempDir("skopeo-dir");
  const blobsDir = join(layoutDir, "blobs", "sha256");
  const hex = (digest: string): string => digest.slice("sha256:".length);
  await writeFile(join(dir, "version"), "Directory Transport Version: 1.1\n");
  for (const name of await readdir(blobsDir)) await symlink(join(blobsDir, name), join(dir, name));
  const top = await readFile(join(blobsDir, hex(desc.digest)));
  await writeFile(join(dir, "manifest.json"), top);
  if (desc.mediaType === MediaTypes.dockerManifestList) {
    const list = JSON.parse(top.toString("utf8")) as { manifests: Descriptor[] };
    for (const child of list.manifests) {
      await writeFile(
        join(dir, `${hex(child.digest)}.manifest.json`),
        await readFile(join(blobsDir, hex(child.digest))),
      );
    }
  }
  return dir;
}

/**
 * `skopeo inspect --raw` of `docker://<ref>` over plain HTTP: the manifest bytes exactly as the registry
 * serves them, and their sha256 digest.
 */
export async function inspectRaw(
  ref: string,
  opts: { creds?: string } = {},
): Promise<{ bytes: Buffer; digest: string }> {
  const args = [
    "--insecure-policy",
    "inspect",
    "--raw",
    "--tls-verify=false",
    ...(opts.creds ? ["--creds", opts.creds] : ["--no-creds"]),
    `docker://${ref}`,
  ];
  const { stdout } = await runOk("skopeo", args, { env: skopeoEnv(), timeoutMs: 60_000 });
  const bytes = Buffer.from(stdout, "utf8");
  return { bytes, digest: sha256Digest(bytes) };
}
