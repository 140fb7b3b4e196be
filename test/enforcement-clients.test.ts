import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { run } from "../src/local/index.ts";
import { type Containerd, startContainerd, writeHostsToml } from "./support/containerd.ts";
import { createImage, type ImageResult, inspectRaw, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./support/signer.ts";

// Real clients through an enforcing pullgate: the signed image pulls, the unsigned one fails with
// pullgate's DENIED message in the client's own output, and the registry only ever sees pullgate.

const PULLGATE_UA = "pullgate/0.1.0";
const MESSAGE = 'project "proj" admits only signed images';

let work: string;
let registry: Registry;
let containerd: Containerd;
let pg: TestPullgate;
let hostsDir: string;
let signed: ImageResult;

beforeAll(async () => {
  work = await makeTempDir("enforcement-clients");
  const layout = join(work, "layout");
  [registry, containerd] = await Promise.all([startRegistry(), startContainerd()]);
  const key = generateTestKey();
  signed = await createImage({
    dir: layout,
    tag: "signed",
    layers: [{ size: 2048, seed: "clients-signed" }],
  });
  await createImage({ dir: layout, tag: "unsigned", layers: [{ size: 2048, seed: "clients-unsigned" }] });
  await pushImage({ layoutDir: layout, tag: "signed", dest: `${registry.host}/proj/app:signed` });
  await pushImage({ layoutDir: layout, tag: "unsigned", dest: `${registry.host}/proj/app:unsigned` });
  await signLegacy({
    writer: new RegistryWriter(registry.url),
    repository: "proj/app",
    digest: signed.manifestDigest,
    key,
  });
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"`,
    `projects:\n  proj:\n    mode: enforce\n    keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]\n`,
  );
  hostsDir = join(work, "hosts");
  await writeHostsToml(hostsDir, registry.host, pg.proxyUrl);
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  await Promise.all([containerd?.stop(), registry?.stop()]);
  if (work) await removeDir(work);
});

async function onlyPullgateContacted(before: number): Promise<void> {
  const seen = (await registry.requests()).slice(before);
  expect(seen.length).toBeGreaterThan(0);
  expect(seen.filter((r) => r.userAgent !== PULLGATE_UA)).toEqual([]);
}

describe("skopeo through an enforcing pullgate", () => {
  it("inspects the signed image and is denied the unsigned one with pullgate's message", async () => {
    const before = (await registry.requests()).length;
    expect((await inspectRaw(`${pg.host}/proj/app:signed`)).digest).toBe(signed.manifestDigest);
    const denied = await run("skopeo", [
      "--insecure-policy",
      "inspect",
      "--raw",
      "--tls-verify=false",
      "--no-creds",
      `docker://${pg.host}/proj/app:unsigned`,
    ]);
    expect(denied.code).not.toBe(0);
    // skopeo's logger escapes the quotes around the project name.
    expect(denied.stderr).toMatch(/denied: project \\?"proj\\?" admits only signed images/);
    expect(denied.stderr).toContain("has no signature");
    await onlyPullgateContacted(before);
  });
});

describe("containerd through an enforcing pullgate", () => {
  it("pulls the signed image", async () => {
    const before = (await registry.requests()).length;
    const res = await containerd.pull(`${registry.host}/proj/app:signed`, { hostsDir, unpack: true });
    expect(res.code, res.stderr).toBe(0);
    await onlyPullgateContacted(before);
  });

  it("fails the unsigned pull with the DENIED message in ctr's output, never going to the registry directly", async () => {
    const before = (await registry.requests()).length;
    const res = await containerd.pull(`${registry.host}/proj/app:unsigned`, { hostsDir, unpack: true });
    expect(res.code).not.toBe(0);
    const output = `${res.stdout}${res.stderr}`;
    expect(output).toContain("403 Forbidden");
    expect(output).toContain(MESSAGE);
    await onlyPullgateContacted(before);
  });
});
