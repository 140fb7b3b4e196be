import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../src/local/index.ts";
import { type Containerd, startContainerd, writeHostsToml } from "./support/containerd.ts";
import { createImage, type ImageResult, MediaTypes, pushImage, sha256Digest } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { errorCodeOf, rawRequest, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import {
  attachBundle,
  BUNDLE_V03,
  generateTestKey,
  makeBundle,
  RegistryWriter,
  SIMPLESIGNING,
  signLegacy,
  simpleSigningPayload,
} from "./support/signer.ts";

// Security issue items 1–3, performed with the real clients: unsigned runnable images disguised so
// that a naive reading takes them for signature artifacts. Each attack is first shown to work in a
// project with enforcement off (the client really unpacks the image: the disguise is runnable), then
// shown to be denied in enforce mode (also with gateHead and strictBlobs), while real signature
// artifacts keep passing so that `cosign verify` works through pullgate.

const DSSE = "application/vnd.dsse.envelope.v1+json";
const EMPTY_CONFIG = "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";

let work: string;
let registry: Registry;
let containerd: Containerd;
let pg: TestPullgate;
let hostsDir: string;
let writer: RegistryWriter;
let runnable: ImageResult;
let signedImage: ImageResult;
const key = generateTestKey();

/** Hand-written manifest JSON (key order and duplicates exactly as given), pushed under `tag`. */
async function pushRaw(repository: string, tag: string, json: string): Promise<string> {
  return writer.pushManifest(repository, tag, Buffer.from(json), MediaTypes.ociManifest);
}

const desc = (mediaType: string, digest: string, size: number) => JSON.stringify({ mediaType, digest, size });

/** The attack manifests, each a runnable image under a disguise. */
function disguises(payloadDesc: string): Record<string, string> {
  const config = desc(MediaTypes.ociConfig, runnable.configDigest, runnable.configBytes.length);
  const tarLayer = (type: string) =>
    desc(type, runnable.layerDigests[0] as string, runnable.layerSizes[0] as number);
  const realLayer = tarLayer(MediaTypes.ociLayerGzip);
  return {
    // 1. JSON parser differential: JSON.parse reads `layers` (a signature), Go reads `Layers` (last match).
    differential: `{"schemaVersion":2,"mediaType":"${MediaTypes.ociManifest}","config":${config},"layers":[${payloadDesc}],"Layers":[${realLayer}]}`,
    // Unicode folding: Go reads "layerſ" (U+017F) as "layers"; the key comes last, so it wins.
    folded: `{"schemaVersion":2,"mediaType":"${MediaTypes.ociManifest}","config":${config},"layers":[${payloadDesc}],"layer\u017f":[${realLayer}]}`,
    // 2. Signature-shaped manifests whose "signature" layer is the real tar+gzip layer.
    sig: `{"schemaVersion":2,"mediaType":"${MediaTypes.ociManifest}","config":${config},"layers":[${tarLayer(SIMPLESIGNING)}]}`,
    att: `{"schemaVersion":2,"mediaType":"${MediaTypes.ociManifest}","config":${config},"layers":[${tarLayer(DSSE)}]}`,
    bundle: `{"schemaVersion":2,"mediaType":"${MediaTypes.ociManifest}","artifactType":"${BUNDLE_V03}","config":${config},"layers":[${tarLayer(BUNDLE_V03)}]}`,
  };
}

beforeAll(async () => {
  work = await makeTempDir("bypass-attacks");
  const layout = join(work, "layout");
  [registry, containerd] = await Promise.all([startRegistry(), startContainerd()]);
  writer = new RegistryWriter(registry.url);
  runnable = await createImage({
    dir: layout,
    tag: "runnable",
    layers: [{ size: 1024, seed: "bypass-runnable", fileName: "pwned.txt" }],
  });
  signedImage = await createImage({
    dir: layout,
    tag: "signed",
    layers: [{ size: 512, seed: "bypass-signed" }],
  });
  for (const project of ["open", "proj", "strict"]) {
    await pushImage({
      layoutDir: layout,
      tag: "runnable",
      dest: `${registry.host}/${project}/carrier:runnable`,
    });
    await pushImage({ layoutDir: layout, tag: "signed", dest: `${registry.host}/${project}/app:v1` });
    await signLegacy({ writer, repository: `${project}/app`, digest: signedImage.manifestDigest, key });
    await attachBundle({
      writer,
      repository: `${project}/app`,
      digest: signedImage.manifestDigest,
      subjectMediaType: signedImage.manifestMediaType,
      subjectSize: signedImage.manifestBytes.length,
      bundle: makeBundle({ digest: signedImage.manifestDigest, key }),
    });
    const payload = simpleSigningPayload(runnable.manifestDigest);
    const payloadDigest = await writer.pushBlob(`${project}/carrier`, payload);
    const payloadDesc = desc(SIMPLESIGNING, payloadDigest, payload.length);
    for (const [name, json] of Object.entries(disguises(payloadDesc))) {
      await pushRaw(`${project}/carrier`, name, json);
    }
  }
  const pem = JSON.stringify(key.publicKeyPem);
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"`,
    `projects:
  open:
    mode: "off"
  proj:
    mode: enforce
    keys: [{ name: release, pem: ${pem}, transparencyLog: optional }]
  strict:
    mode: enforce
    gateHead: true
    strictBlobs: true
    keys: [{ name: release, pem: ${pem}, transparencyLog: optional }]
`,
  );
  hostsDir = join(work, "hosts");
  await writeHostsToml(hostsDir, registry.host, pg.proxyUrl);
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  await Promise.all([containerd?.stop(), registry?.stop()]);
  if (work) await removeDir(work);
});

/** skopeo copy into a private containers-storage (vfs): it unpacks every layer it is handed. */
async function copyToStorage(ref: string, name: string) {
  const store = join(work, `storage-${name}`);
  const res = await run(
    "skopeo",
    [
      "--insecure-policy",
      "copy",
      "--src-tls-verify=false",
      "--src-no-creds",
      `docker://${pg.host}/${ref}`,
      `containers-storage:[vfs@${store}/root+${store}/run]localhost/${name}:latest`,
    ],
    { timeoutMs: 60_000 },
  );
  return { ...res, store };
}

/** Files of the unpacked layers in a vfs store (the runnable layer holds `pwned.txt`). */
async function unpackedFiles(store: string): Promise<string[]> {
  const dirs = await readdir(join(store, "root", "vfs", "dir")).catch(() => [] as string[]);
  const files: string[] = [];
  for (const d of dirs) files.push(...(await readdir(join(store, "root", "vfs", "dir", d))));
  return files;
}

const ATTACKS = ["differential", "folded", "sig", "att", "bundle"] as const;

describe("the disguises are runnable: with enforcement off, containers/image unpacks them", () => {
  it.each(ATTACKS)("%s: skopeo → containers-storage unpacks the real layer", async (attack) => {
    const res = await copyToStorage(`open/carrier:${attack}`, `open-${attack}`);
    expect(res.code, res.stderr).toBe(0);
    expect(await unpackedFiles(res.store)).toContain("pwned.txt");
  });

  it("differential: ctr pull unpacks the layer Go reads (Layers)", async () => {
    const res = await containerd.pull(`${registry.host}/open/carrier:differential`, {
      hostsDir,
      unpack: true,
    });
    expect(res.code, res.stderr).toBe(0);
  });
});

describe("enforce: every disguise is denied", () => {
  it.each(ATTACKS)("%s: skopeo → containers-storage is denied and unpacks nothing", async (attack) => {
    const res = await copyToStorage(`proj/carrier:${attack}`, `proj-${attack}`);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/denied: project \\?"proj\\?" admits only signed images/);
    expect(await unpackedFiles(res.store)).not.toContain("pwned.txt");
  });

  it.each(["differential", "folded"])("%s: the denial names the ambiguity", async (attack) => {
    const res = await rawRequest(pg.proxyUrl, `/v2/proj/carrier/manifests/${attack}`, {
      headers: { accept: MediaTypes.ociManifest },
    });
    expect(res.status).toBe(403);
    const error = JSON.parse(res.body.toString()).errors[0];
    expect(error.detail.reason).toBe("AMBIGUOUS_MANIFEST");
    expect(error.message).toMatch(/Go clients read as "layers"/);
  });

  it.each(["sig", "att", "bundle"])(
    "%s: the signature-shaped image needs a signature of its own",
    async (attack) => {
      const res = await rawRequest(pg.proxyUrl, `/v2/proj/carrier/manifests/${attack}`, {
        headers: { accept: MediaTypes.ociManifest },
      });
      expect(res.status).toBe(403);
      expect(JSON.parse(res.body.toString()).errors[0].detail.reason).toBe("NO_SIGNATURE");
    },
  );

  it.each(ATTACKS)("%s: ctr pull is denied (gateHead and strictBlobs project too)", async (attack) => {
    for (const project of ["proj", "strict"]) {
      // The same digest pulled from the open project is already in containerd's content store.
      await containerd.clear();
      const res = await containerd.pull(`${registry.host}/${project}/carrier:${attack}`, {
        hostsDir,
        unpack: true,
      });
      expect(res.code, `${project} ${res.stdout}`).not.toBe(0);
      expect(`${res.stdout}${res.stderr}`).toMatch(/403 Forbidden/);
    }
  });
});

describe("strictBlobs: a disguise never admits the blobs it lists", () => {
  it.each(ATTACKS)(
    "%s: after the denied manifest, its runnable layer and config are not served",
    async (attack) => {
      const m = await rawRequest(pg.proxyUrl, `/v2/strict/carrier/manifests/${attack}`, {
        headers: { accept: MediaTypes.ociManifest },
      });
      expect(m.status).toBe(403);
      for (const blob of [runnable.layerDigests[0], runnable.configDigest]) {
        const res = await rawRequest(pg.proxyUrl, `/v2/strict/carrier/blobs/${blob}`);
        expect(res.status).toBe(403);
        expect(JSON.parse(res.body.toString()).errors[0].detail.reason).toBe("BLOB_NOT_ADMITTED");
      }
    },
  );
});

describe("real signature artifacts still pass (what `cosign verify` fetches)", () => {
  it.each(["proj", "strict"])(
    "%s: the .sig manifest and its blobs, the referrers index, the bundle",
    async (project) => {
      const hex = signedImage.manifestDigest.slice("sha256:".length);
      const get = (path: string, accept = `${MediaTypes.ociManifest}, ${MediaTypes.ociIndex}`) =>
        rawRequest(pg.proxyUrl, `/v2/${project}/app/${path}`, { headers: { accept } });
      const sig = await get(`manifests/sha256-${hex}.sig`);
      expect(sig.status, sig.body.toString()).toBe(200);
      const sigManifest = JSON.parse(sig.body.toString());
      for (const d of [sigManifest.config, ...sigManifest.layers]) {
        expect((await get(`blobs/${d.digest}`)).status).toBe(200);
      }
      const index = await get(`manifests/sha256-${hex}`);
      expect(index.status, index.body.toString()).toBe(200);
      const referrer = JSON.parse(index.body.toString()).manifests[0];
      const bundleManifest = await get(`manifests/${referrer.digest}`);
      expect(bundleManifest.status, bundleManifest.body.toString()).toBe(200);
      const parsed = JSON.parse(bundleManifest.body.toString());
      expect(parsed.config.digest).toBe(EMPTY_CONFIG);
      const bundle = await get(`blobs/${parsed.layers[0].digest}`);
      expect(bundle.status).toBe(200);
      expect(sha256Digest(bundle.body)).toBe(parsed.layers[0].digest);
      // And the signed image itself.
      expect((await get(`manifests/v1`)).status).toBe(200);
    },
  );

  it("skopeo copies the .sig artifact (a client reading it as an image)", async () => {
    const hex = signedImage.manifestDigest.slice("sha256:".length);
    const res = await run("skopeo", [
      "--insecure-policy",
      "copy",
      "--src-tls-verify=false",
      "--src-no-creds",
      `docker://${pg.host}/proj/app:sha256-${hex}.sig`,
      `dir:${join(work, "sig-copy")}`,
    ]);
    expect(res.code, res.stderr).toBe(0);
  });

  it("denial codes are OCI errors", async () => {
    const res = await rawRequest(pg.proxyUrl, "/v2/proj/carrier/manifests/sig", {
      headers: { accept: MediaTypes.ociManifest },
    });
    expect(errorCodeOf(res)).toBe("DENIED");
  });
});
