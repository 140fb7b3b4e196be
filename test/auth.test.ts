import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImage, type ImageResult, inspectRaw, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { errorCodeOf, rawRequest, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";

// Upstream authentication against a real distribution registry that requires HTTP Basic (htpasswd).
// The Bearer token flow (realm/service/scope, caching, refresh) is covered by the unit tests.

const USER = "bot";
const PASS = "hunter2-pw";
const BASIC = `Basic ${Buffer.from(`${USER}:${PASS}`).toString("base64")}`;
const ACCEPT = "application/vnd.oci.image.manifest.v1+json";

let work: string;
let registry: Registry;
let withCreds: TestPullgate;
let withoutCreds: TestPullgate;
let app: ImageResult;

beforeAll(async () => {
  work = await makeTempDir("auth-test");
  registry = await startRegistry({ auth: { username: USER, password: PASS } });
  app = await createImage({ dir: join(work, "layout"), tag: "v1", layers: [{ size: 1000, seed: "auth" }] });
  await pushImage({
    layoutDir: join(work, "layout"),
    tag: "v1",
    dest: `${registry.host}/proj/app:v1`,
    creds: `${USER}:${PASS}`,
  });
  // Anonymous clients pulling with pullgate's login is what clientAuth.open: true states explicitly
  // (test/client-auth.test.ts covers the default, which refuses this without client authentication).
  withCreds = await startTestPullgate(
    `  - name: private\n    url: "${registry.url}"\n    credentials: { username: ${USER}, password: ${PASS} }`,
    "clientAuth: { open: true }",
  );
  withoutCreds = await startTestPullgate(`  - name: private\n    url: "${registry.url}"`);
}, 120_000);

afterAll(async () => {
  await withCreds?.stop();
  await withoutCreds?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

describe("pullgate's own credentials", () => {
  it("let an anonymous client pull from a registry that requires auth", async () => {
    const via = await inspectRaw(`${withCreds.host}/proj/app:v1`);
    expect(via.digest).toBe(app.manifestDigest);
    const blob = await rawRequest(withCreds.proxyUrl, `/v2/proj/app/blobs/${app.layerDigests[0]}`);
    expect(blob.status).toBe(200);
    expect(blob.body.length).toBe(app.layerSizes[0]);
  });

  it("answer the challenge once, then go straight to the registry with the cached credentials", async () => {
    const before = (await registry.requests()).length;
    for (let i = 0; i < 3; i++) {
      const res = await rawRequest(withCreds.proxyUrl, "/v2/proj/app/manifests/v1", {
        headers: { accept: ACCEPT },
      });
      expect(res.status).toBe(200);
    }
    const seen = (await registry.requests()).slice(before).map((r) => r.status);
    expect(seen).toEqual([200, 200, 200]);
  });

  it("are never used when the client sends its own Authorization", async () => {
    const res = await rawRequest(withCreds.proxyUrl, "/v2/proj/app/manifests/v1", {
      headers: { accept: ACCEPT, authorization: "Basic d3Jvbmc6d3Jvbmc=" },
    });
    expect(res.status).toBe(401);
    expect(errorCodeOf(res)).toBe("UNAUTHORIZED");
  });

  it("never appear in the log", () => {
    const text = JSON.stringify([...withCreds.logs, ...withoutCreds.logs]);
    expect(text).not.toContain(PASS);
    expect(text).not.toContain(Buffer.from(`${USER}:${PASS}`).toString("base64"));
  });
});

describe("a client that authenticates itself", () => {
  it("gets the registry's 401 challenge relayed when it sends no credentials", async () => {
    const res = await rawRequest(withoutCreds.proxyUrl, "/v2/proj/app/manifests/v1", {
      headers: { accept: ACCEPT },
    });
    expect(res.status).toBe(401);
    expect(errorCodeOf(res)).toBe("UNAUTHORIZED");
    expect(res.headers["www-authenticate"]).toMatch(/^Basic realm=/);
  });

  it("has its Authorization forwarded unchanged and pulls", async () => {
    const res = await rawRequest(withoutCreds.proxyUrl, "/v2/proj/app/manifests/v1", {
      headers: { accept: ACCEPT, authorization: BASIC },
    });
    expect(res.status).toBe(200);
    expect(res.headers["docker-content-digest"]).toBe(app.manifestDigest);
  });

  it("works for skopeo with --creds", async () => {
    const via = await inspectRaw(`${withoutCreds.host}/proj/app:v1`, { creds: `${USER}:${PASS}` });
    expect(via.digest).toBe(app.manifestDigest);
  });
});
