import { createHash } from "node:crypto";
import { MockAgent } from "undici";
import { expect, it } from "vitest";
import { generateTestKey } from "../../test/support/signer.ts";
import { createApps, createDeps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";

// A signature lookup shared by concurrent requests must not die with the first client's connection.

const UP = "http://up.test";
const OCI = "application/vnd.oci.image.manifest.v1+json";
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI, config: {}, layers: [] }));
const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;

it("a client that disconnects during the shared lookup does not fail the other requests", async () => {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const key = generateTestKey();
  const config = parseConfig(
    `upstreams:\n  - name: up\n    url: "${UP}"\nprojects:\n  proj:\n    mode: enforce\n    keys: [{ name: k, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]\n`,
    { source: "t", baseDir: ".", env: {} },
  );
  const deps = await createDeps(config, { logger: createMemoryLogger(), dispatcherFor: () => agent });
  const app = createApps(deps).proxy;
  const pool = agent.get(UP);
  pool
    .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
    .reply(200, manifest, { headers: { "content-type": OCI } })
    .times(2);
  // The `.sig` lookup is slow; the referrers API and its fallback find nothing.
  pool
    .intercept({ path: `/v2/proj/app/manifests/sha256-${digest.slice(7)}.sig`, method: "GET" })
    .reply(404, "")
    .delay(300);
  pool.intercept({ path: /\/v2\/proj\/app\/referrers\//, method: "GET" }).reply(404, "");
  pool.intercept({ path: `/v2/proj/app/manifests/sha256-${digest.slice(7)}`, method: "GET" }).reply(404, "");
  const first = new AbortController();
  const a = Promise.resolve(app.request("/v2/proj/app/manifests/v1", { signal: first.signal })).catch(
    () => undefined,
  );
  await new Promise((r) => setTimeout(r, 50));
  const b = app.request("/v2/proj/app/manifests/v1");
  await new Promise((r) => setTimeout(r, 50));
  first.abort();
  const res = await b;
  await a;
  expect(res.status).toBe(403);
  expect(deps.metrics.signatureLookups.value()).toBe(1);
  await deps.close(); // also closes the MockAgent (the upstream pool)
});
