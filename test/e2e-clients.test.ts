import { copyFile, mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run, runOk } from "../src/local/index.ts";
import { type Containerd, startContainerd } from "./support/containerd.ts";
import { createImage, type ImageResult, pushImage, sha256Digest } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./support/signer.ts";
import { createTestCa, issueServerCert, type TestCa } from "./support/tls.ts";

// End to end with real clients over TLS, using the client configurations shipped in
// deploy/clients/ as they are (only the documented placeholders filled in): pullgate is the only
// route, a signed image pulls, an unsigned one fails with the DENIED message, and the registry's
// log shows that no client ever contacted it directly.

const ROOT = join(import.meta.dirname, "..");
const CLIENTS = join(ROOT, "deploy", "clients");
const PULLGATE_UA = "pullgate/0.1.0";
const MESSAGE = /project \\?"proj\\?" admits only signed images/;

let work: string;
let ca: TestCa;
let registry: Registry;
let containerd: Containerd;
let pg: TestPullgate;
let signed: ImageResult;

beforeAll(async () => {
  work = await makeTempDir("e2e-clients");
  ca = await createTestCa(work);
  const cert = await issueServerCert(ca, "pullgate", ["IP:127.0.0.1", "DNS:localhost"]);
  const layout = join(work, "layout");
  [registry, containerd] = await Promise.all([startRegistry(), startContainerd()]);
  const key = generateTestKey();
  signed = await createImage({ dir: layout, tag: "signed", layers: [{ size: 4096, seed: "e2e-signed" }] });
  await createImage({ dir: layout, tag: "unsigned", layers: [{ size: 4096, seed: "e2e-unsigned" }] });
  await pushImage({ layoutDir: layout, tag: "signed", dest: `${registry.host}/proj/app:signed` });
  await pushImage({ layoutDir: layout, tag: "unsigned", dest: `${registry.host}/proj/app:unsigned` });
  await signLegacy({
    writer: new RegistryWriter(registry.url),
    repository: "proj/app",
    digest: signed.manifestDigest,
    key,
  });
  pg = await startTestPullgate(
    `  - name: private\n    url: "${registry.url}"\n    default: true`,
    `projects:\n  proj:\n    mode: enforce\n    keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]\n`,
    { tls: cert },
  );
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  await Promise.all([containerd?.stop(), registry?.stop()]);
  if (work) await removeDir(work);
});

/** A shipped client file with its placeholders filled in. */
async function shipped(relative: string, values: Record<string, string>): Promise<string> {
  let text = await readFile(join(CLIENTS, relative), "utf8");
  for (const [placeholder, value] of Object.entries(values)) text = text.replaceAll(placeholder, value);
  return text;
}

async function registrySawOnlyPullgate(before: number): Promise<void> {
  const seen = (await registry.requests()).slice(before);
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.filter((r) => r.userAgent !== PULLGATE_UA)).toEqual([]);
}

describe("containerd with the shipped hosts.toml, over TLS", () => {
  let hostsDir: string;
  beforeAll(async () => {
    hostsDir = join(work, "certs.d");
    await mkdir(join(hostsDir, "_default"), { recursive: true });
    const toml = await shipped("containerd/certs.d/_default/hosts.toml", { PULLGATE_HOST: pg.host });
    // The documented private-CA line, pointed at the test CA.
    const withCa = toml.replace(
      '# ca = "/etc/containerd/certs.d/pullgate-ca.pem"',
      `ca = "${ca.caCertPath}"`,
    );
    expect(withCa).not.toBe(toml);
    await writeFile(join(hostsDir, "_default", "hosts.toml"), withCa);
  });

  it("pulls and unpacks the signed image through pullgate only", async () => {
    const before = (await registry.requests()).length;
    const res = await containerd.pull(`${registry.host}/proj/app:signed`, {
      hostsDir,
      plainHttp: false,
      unpack: true,
    });
    expect(res.code, res.stderr).toBe(0);
    await registrySawOnlyPullgate(before);
  });

  it("fails the unsigned pull with the DENIED message, and never falls back to the registry", async () => {
    const before = (await registry.requests()).length;
    const res = await containerd.pull(`${registry.host}/proj/app:unsigned`, {
      hostsDir,
      plainHttp: false,
      unpack: true,
    });
    expect(res.code).not.toBe(0);
    expect(`${res.stdout}${res.stderr}`).toMatch(MESSAGE);
    await registrySawOnlyPullgate(before);
  });
});

describe("skopeo over TLS", () => {
  it("copies the signed image byte-identical to a direct copy", async () => {
    const certDir = join(work, "skopeo-certs");
    await mkdir(certDir, { recursive: true });
    await copyFile(ca.caCertPath, join(certDir, "ca.crt"));
    const via = join(work, "copy-via");
    const direct = join(work, "copy-direct");
    await runOk("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--preserve-digests",
      "--src-cert-dir",
      certDir,
      "--src-no-creds",
      `docker://${pg.host}/proj/app:signed`,
      `dir:${via}`,
    ]);
    await runOk("skopeo", [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--preserve-digests",
      "--src-tls-verify=false",
      "--src-no-creds",
      `docker://${registry.host}/proj/app:signed`,
      `dir:${direct}`,
    ]);
    const hashes = async (dir: string) =>
      Object.fromEntries(
        await Promise.all(
          (await readdir(dir)).map(async (f) => [f, sha256Digest(await readFile(join(dir, f)))]),
        ),
      );
    const viaHashes = await hashes(via);
    expect(viaHashes).toEqual(await hashes(direct));
    expect(viaHashes["manifest.json"]).toBe(signed.manifestDigest);
  });
});

describe("podman with the shipped registries.conf, over TLS", () => {
  let env: NodeJS.ProcessEnv;
  let args: string[];
  beforeAll(async () => {
    const conf = join(work, "registries.conf");
    await writeFile(
      conf,
      await shipped("containers/registries.conf", {
        PULLGATE_HOST: pg.host,
        PRIVATE_REGISTRY: registry.host,
      }),
    );
    // An empty auth file: nothing from the machine's own podman login leaks in.
    await writeFile(join(work, "auth.json"), "{}");
    const certDir = join(work, "podman-certs");
    await mkdir(certDir, { recursive: true });
    await copyFile(ca.caCertPath, join(certDir, "ca.crt"));
    env = { ...process.env, CONTAINERS_REGISTRIES_CONF: conf, REGISTRY_AUTH_FILE: join(work, "auth.json") };
    args = [
      "--root",
      join(work, "podman-root"),
      "--runroot",
      join(work, "podman-run"),
      "--storage-driver",
      "vfs",
      "--events-backend",
      "none",
      "--cgroup-manager",
      "cgroupfs",
    ];
    env.CERT_DIR = certDir;
  });

  function podmanPull(ref: string) {
    return run("podman", [...args, "pull", "--cert-dir", env.CERT_DIR as string, ref], {
      env,
      timeoutMs: 120_000,
    });
  }

  it("pulls the signed image through pullgate only", async () => {
    const before = (await registry.requests()).length;
    const res = await podmanPull(`${registry.host}/proj/app:signed`);
    expect(res.code, res.stderr).toBe(0);
    await registrySawOnlyPullgate(before);
  });

  it("fails the unsigned pull with `denied: <message>`, and never falls back to the registry", async () => {
    const before = (await registry.requests()).length;
    const res = await podmanPull(`${registry.host}/proj/app:unsigned`);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/denied: /);
    expect(res.stderr).toMatch(MESSAGE);
    await registrySawOnlyPullgate(before);
  });
});
