import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import {
  rawRequest,
  redisYaml,
  startTestPullgate,
  TEST_REDIS_HMAC_KEY_ENV,
  type TestPullgate,
} from "./support/pullgate.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./support/signer.ts";

// Someone who can write pullgate's Redis directly, but does not hold the replicas' HMAC key, attacks two
// enforcing replicas (A and B, same key) with a plain ioredis client: planted allow verdicts, a planted
// `{"mode":"off"}` runtime policy, tampered entries and entries replayed under another key are all ignored.
// What A stores legitimately still reaches B; a replica with another key (C) trusts none of it.

const ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
const ADMIN_TOKEN = "s3cret-admin-token";
const PREFIX = "pullgate:v1:";

let work: string;
let registry: Registry;
let redis: RedisServer;
let attacker: Redis;
let pgA: TestPullgate;
let pgB: TestPullgate;
let pgC: TestPullgate;
const img: Record<string, ImageResult> = {};

beforeAll(async () => {
  work = await makeTempDir("redis-integrity-test");
  const layout = join(work, "layout");
  [registry, redis] = await Promise.all([startRegistry(), startRedis()]);
  attacker = new Redis(redis.url, { maxRetriesPerRequest: 1 });
  const key = generateTestKey();
  const writer = new RegistryWriter(registry.url);
  for (const name of ["signed", "planted", "tampered", "replayed", "stranger"]) {
    img[name] = await createImage({
      dir: layout,
      tag: name,
      layers: [{ size: 256, seed: `integrity-${name}` }],
      labels: { name },
    });
    await pushImage({ layoutDir: layout, tag: name, dest: `${registry.host}/proj/${name}:v1` });
  }
  for (const name of ["signed", "stranger"])
    await signLegacy({
      writer,
      repository: `proj/${name}`,
      digest: img[name]?.manifestDigest as string,
      key,
    });

  const upstreams = `  - name: local\n    url: "${registry.url}"`;
  const pem = JSON.stringify(key.publicKeyPem);
  const config = `${redisYaml(redis.url)}projects:
  proj:
    mode: enforce
    keys: [{ name: release, pem: ${pem}, transparencyLog: optional }]
  staged:
    mode: audit
  opened:
    mode: enforce
`;
  pgA = await startTestPullgate(upstreams, config, { adminToken: ADMIN_TOKEN });
  pgB = await startTestPullgate(upstreams, config, { adminToken: ADMIN_TOKEN });
  pgC = await startTestPullgate(upstreams, config, {
    adminToken: ADMIN_TOKEN,
    env: { [TEST_REDIS_HMAC_KEY_ENV]: randomBytes(32).toString("hex") },
  });
}, 120_000);

afterAll(async () => {
  await Promise.all([pgA?.stop(), pgB?.stop(), pgC?.stop()]);
  attacker?.disconnect();
  await Promise.all([registry?.stop(), redis?.stop()]);
  if (work) await removeDir(work);
});

const get = (pg: TestPullgate, name: string) =>
  rawRequest(pg.proxyUrl, `/v2/proj/${name}/manifests/v1`, { headers: { accept: ACCEPT } });

const verdictKey = (pg: TestPullgate, name: string) =>
  `${PREFIX}verdict:${pg.deps.policies.forProject("proj").fingerprint}:${img[name]?.manifestDigest}`;

const rejected = (pg: TestPullgate, kind: "verdict" | "policy") =>
  pg.deps.metrics.redisRejectedEntries.value({ kind });

function lastDecision(pg: TestPullgate, name: string) {
  return pg.logs
    .filter((r) => r.kind === "manifest-decision" && r.digest === img[name]?.manifestDigest)
    .at(-1);
}

/**
 * What `pg` has stored in Redis for `name`'s digest under the policy of `proj`. `verdict` (default: the one
 * in pg's memory tier) is stored again while it is missing: under load a Redis write can time out and be
 * dropped, which a later pull would repair the same way.
 */
async function storedVerdict(
  pg: TestPullgate,
  name: string,
  verdict?: { outcome: "allow" | "deny"; reason?: string; decidedAt: number },
): Promise<string> {
  const fingerprint = pg.deps.policies.forProject("proj").fingerprint;
  const digest = img[name]?.manifestDigest as string;
  const value = verdict ?? (await pg.deps.cache.get(fingerprint, digest))?.verdict;
  expect(value, `${name}: a verdict to store`).toBeDefined();
  for (let attempt = 0; attempt < 20; attempt++) {
    const stored = await attacker.get(verdictKey(pg, name));
    if (stored !== null) return stored;
    await pg.deps.cache.set(fingerprint, digest, value as NonNullable<typeof value>, 3600);
  }
  throw new Error(`${name}: the verdict never reached Redis`);
}

async function putPolicy(pg: TestPullgate, project: string, body: unknown): Promise<void> {
  const res = await fetch(`${pg.adminUrl}/admin/v1/projects/${project}/policy`, {
    method: "PUT",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  expect(res.status).toBe(200);
}

describe("verdicts", () => {
  it("an allow verdict written straight into Redis is not used: the image is verified, and denied", async () => {
    const key = verdictKey(pgB, "planted");
    const allow = { outcome: "allow", via: "signature", key: "release", decidedAt: Date.now() };
    await attacker.set(key, JSON.stringify(allow), "EX", 3600);
    const lookups = pgB.deps.metrics.signatureLookups.value();
    const res = await get(pgB, "planted");
    expect(res.status).toBe(403);
    expect(pgB.deps.metrics.signatureLookups.value() - lookups).toBe(1);
    expect(lastDecision(pgB, "planted")).toMatchObject({ outcome: "deny", tier: "verified" });
    expect(rejected(pgB, "verdict")).toBeGreaterThanOrEqual(1);
    expect(pgB.logs.find((r) => r.event === "redis entry rejected")).toMatchObject({
      level: "warn",
      kind: "verdict",
    });
    expect(await pgB.deps.metrics.render()).toMatch(
      /^pullgate_redis_rejected_entries_total\{kind="verdict"\} [1-9]/m,
    );
  });

  it("a stored deny changed into an allow is not used", async () => {
    // A genuine deny, sealed by replica A for this digest under this policy.
    const deny = { outcome: "deny" as const, reason: "NO_SIGNATURE", decidedAt: Date.now() };
    const stored = await storedVerdict(pgA, "tampered", deny);
    expect(stored).toContain('"outcome":"deny"');
    const key = verdictKey(pgA, "tampered");
    await attacker.set(key, stored.replace('"outcome":"deny"', '"outcome":"allow"'), "KEEPTTL");
    const before = rejected(pgB, "verdict");
    const lookups = pgB.deps.metrics.signatureLookups.value();
    expect((await get(pgB, "tampered")).status).toBe(403);
    expect(pgB.deps.metrics.signatureLookups.value() - lookups).toBe(1);
    expect(rejected(pgB, "verdict")).toBeGreaterThan(before);
  });

  it("a genuine allow verdict replayed under another digest's key is not used", async () => {
    expect((await get(pgA, "signed")).status).toBe(200);
    const genuine = await storedVerdict(pgA, "signed");
    expect(genuine).toContain('"outcome":"allow"');
    await attacker.set(verdictKey(pgB, "replayed"), genuine, "EX", 3600);
    const before = rejected(pgB, "verdict");
    expect((await get(pgB, "replayed")).status).toBe(403);
    expect(lastDecision(pgB, "replayed")).toMatchObject({ outcome: "deny", tier: "verified" });
    expect(rejected(pgB, "verdict")).toBeGreaterThan(before);
  });

  it("a verdict another replica stored with the same key is used; a replica with another key verifies itself", async () => {
    expect((await get(pgA, "stranger")).status).toBe(200);
    await storedVerdict(pgA, "stranger");
    const lookupsB = pgB.deps.metrics.signatureLookups.value();
    const before = rejected(pgB, "verdict");
    expect((await get(pgB, "stranger")).status).toBe(200);
    expect(lastDecision(pgB, "stranger")).toMatchObject({ outcome: "allow", tier: "redis" });
    expect(pgB.deps.metrics.signatureLookups.value() - lookupsB).toBe(0);
    expect(rejected(pgB, "verdict")).toBe(before);

    const lookupsC = pgC.deps.metrics.signatureLookups.value();
    expect((await get(pgC, "stranger")).status).toBe(200);
    expect(lastDecision(pgC, "stranger")).toMatchObject({ outcome: "allow", tier: "verified" });
    expect(pgC.deps.metrics.signatureLookups.value() - lookupsC).toBe(1);
    expect(rejected(pgC, "verdict")).toBeGreaterThanOrEqual(1);
  });
});

describe("runtime policies", () => {
  const policyKey = `${PREFIX}policy`;
  /** What the subscription does when a change is published; awaited here instead of waited for. */
  const reload = (pg: TestPullgate) => pg.deps.policies.reload();

  it('a {"mode":"off"} override written straight into Redis is ignored: the file config applies', async () => {
    await attacker.hset(policyKey, "proj", JSON.stringify({ mode: "off" }));
    await attacker.publish(
      `${PREFIX}policy-changed`,
      JSON.stringify({ project: "proj", origin: "attacker" }),
    );
    await reload(pgB);
    expect(pgB.deps.policies.forProject("proj")).toMatchObject({ mode: "enforce", source: "config" });
    expect((await get(pgB, "planted")).status).toBe(403);
    expect(rejected(pgB, "policy")).toBeGreaterThanOrEqual(1);
    await attacker.hdel(policyKey, "proj");
  });

  it("an override set through the admin API reaches the other replica; tampered, it is ignored", async () => {
    const before = rejected(pgB, "policy");
    await putPolicy(pgA, "staged", { mode: "enforce" });
    await reload(pgB);
    expect(pgB.deps.policies.forProject("staged")).toMatchObject({ mode: "enforce", source: "runtime" });
    expect(rejected(pgB, "policy")).toBe(before);

    const stored = (await attacker.hget(policyKey, "staged")) as string;
    expect(stored).toContain('"mode":"enforce"');
    await attacker.hset(policyKey, "staged", stored.replace('"enforce"', '"off"'));
    await reload(pgB);
    // Back to the file config (audit), never "off".
    expect(pgB.deps.policies.forProject("staged")).toMatchObject({ mode: "audit", source: "config" });
  });

  it("a genuine override replayed under another project is ignored", async () => {
    await putPolicy(pgA, "opened", { mode: "off" });
    const genuine = (await attacker.hget(policyKey, "opened")) as string;
    await attacker.hset(policyKey, "proj", genuine);
    await reload(pgB);
    expect(pgB.deps.policies.forProject("opened")).toMatchObject({ mode: "off", source: "runtime" });
    expect(pgB.deps.policies.forProject("proj")).toMatchObject({ mode: "enforce", source: "config" });
    expect((await get(pgB, "planted")).status).toBe(403);
  });

  it("a replica with another key applies none of the stored overrides", async () => {
    await reload(pgC);
    expect(pgC.deps.policies.forProject("opened")).toMatchObject({ mode: "enforce", source: "config" });
    expect(rejected(pgC, "policy")).toBeGreaterThanOrEqual(1);
  });
});
