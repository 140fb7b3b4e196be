import { Cluster } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/index.ts";
import {
  createRedisEntryMac,
  deletionLogKey,
  POLICY_ENTRY_KIND,
  RECORD_DELETION_SCRIPT,
} from "../src/redis/index.ts";
import { createMemoryLogger } from "../src/telemetry/index.ts";
import {
  startTestPullgate,
  TEST_REDIS_HMAC_KEY,
  TEST_REDIS_HMAC_KEY_ENV,
  type TestPullgate,
} from "./support/pullgate.ts";
import {
  adminStatus,
  expectVerdictsShared,
  lookupsOf,
  projFingerprint,
  pullImage,
  type SignedAndUnsigned,
  startSignedAndUnsigned,
} from "./support/redis-replicas.ts";
import {
  type RedisClusterFixture,
  type RedisSentinelFixture,
  startRedisCluster,
  startRedisSentinel,
  waitFor,
  withClients,
} from "./support/redis-topologies.ts";

// Redis as operators run it: two pullgate replicas share verdicts, runtime policies and cache deletions through
// a 3-master Redis Cluster, and through a Sentinel deployment (master, replica, 3 sentinels) across a failover
// under load, during which a pull is served or refused with 503, never allowed when it should be denied.

const ADMIN_TOKEN = "topologies-admin-token";

let images: SignedAndUnsigned;
let img: SignedAndUnsigned["img"];

beforeAll(async () => {
  images = await startSignedAndUnsigned("redis-topologies-test");
  img = images.img;
}, 120_000);

afterAll(async () => {
  await images?.stop();
});

const upstreams = () => images.upstreamsYaml;
const projects = () => images.projectsYaml;
const admin = (pg: TestPullgate, method: string, path: string, body?: unknown) =>
  adminStatus(pg, ADMIN_TOKEN, method, path, body);

/** Pulls on `pg` until `status` is answered (a runtime policy change travels through pub/sub). */
async function pullUntil(pg: TestPullgate, name: "signed" | "unsigned", status: number): Promise<void> {
  await waitFor(async () => (await pullImage(pg, name)).status === status, `${name} → ${status}`, 15_000);
}

/** A verdict made on `a` is read from Redis by `b` (no lookup of its own); both keep it in memory. */
async function expectSharedVerdicts(a: TestPullgate, b: TestPullgate): Promise<void> {
  await expectVerdictsShared(a, b);
  for (const pg of [a, b]) {
    const hit = await pg.deps.cache.get(projFingerprint(pg), img.signed.manifestDigest);
    expect(hit?.tier).toBe("memory");
  }
}

/** A runtime policy put on `a` reaches `b`, and so does its removal. */
async function expectPolicyPropagation(a: TestPullgate, b: TestPullgate): Promise<void> {
  expect(await admin(a, "PUT", "/admin/v1/projects/proj/policy", { mode: "audit" })).toBe(200);
  await pullUntil(b, "unsigned", 200);
  expect(await admin(a, "DELETE", "/admin/v1/projects/proj/policy")).toBe(200);
  await pullUntil(b, "unsigned", 403);
}

/** DELETE /admin/v1/cache/{digest} on `a` empties both replicas' memory tiers for that digest. */
async function expectDeleteReachesBoth(a: TestPullgate, b: TestPullgate): Promise<void> {
  const digest = img.signed.manifestDigest;
  for (const pg of [a, b]) {
    expect((await pullImage(pg, "signed")).status).toBe(200);
    expect((await pg.deps.cache.get(projFingerprint(pg), digest))?.tier).toBe("memory");
  }
  expect(await admin(a, "DELETE", `/admin/v1/cache/${digest}`)).toBe(200);
  expect(await a.deps.cache.get(projFingerprint(a), digest)).toBeUndefined();
  await waitFor(
    async () => (await b.deps.cache.get(projFingerprint(b), digest)) === undefined,
    "the deletion to reach the other replica's memory tier",
    5_000,
  );
  // Verified again afterwards, and still allowed.
  const before = lookupsOf(b);
  expect((await pullImage(b, "signed")).status).toBe(200);
  expect(lookupsOf(b) - before).toBe(1);
}

describe("Redis Cluster (3 masters)", () => {
  let cluster: RedisClusterFixture;
  let a: TestPullgate;
  let b: TestPullgate;
  const clusterYaml = () =>
    `redis:\n  cluster: ${JSON.stringify(cluster.urls)}\n  hmacKeyEnv: ${TEST_REDIS_HMAC_KEY_ENV}\n`;

  beforeAll(async () => {
    cluster = await startRedisCluster(3);
    a = await startTestPullgate(upstreams(), `${clusterYaml()}${projects()}`, { adminToken: ADMIN_TOKEN });
    b = await startTestPullgate(upstreams(), `${clusterYaml()}${projects()}`, { adminToken: ADMIN_TOKEN });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await cluster?.stop();
  });

  /** A third replica reading Redis again every 200 ms, and a plain Cluster client to write what it should find. */
  async function withReconcilingReplica(
    fn: (c: TestPullgate, writer: Cluster) => Promise<void>,
  ): Promise<void> {
    const c = await startTestPullgate(upstreams(), `${clusterYaml()}${projects()}`, {
      adminToken: ADMIN_TOKEN,
      overrides: { redisReconcileMs: 200 },
    });
    const writer = new Cluster(cluster.nodes.map((n) => ({ host: "127.0.0.1", port: n.port })));
    try {
      await fn(c, writer);
    } finally {
      writer.disconnect();
      await c.stop();
    }
  }

  it("two replicas share verdicts through the cluster; a digest's keys share its hash slot", async () => {
    await expectSharedVerdicts(a, b);
    const probe = new Cluster(
      cluster.nodes.map((n) => ({ host: "127.0.0.1", port: n.port })),
      { redisOptions: { maxRetriesPerRequest: 1 } },
    );
    try {
      const digest = img.signed.manifestDigest;
      const verdictKey = `pullgate:v1:verdict:${projFingerprint(a)}:{${digest}}`;
      const indexKey = `pullgate:v1:digest:{${digest}}`;
      expect(await probe.exists(verdictKey, indexKey), "both keys, one slot (no CROSSSLOT)").toBe(2);
      expect(await probe.smembers(indexKey)).toEqual([projFingerprint(a)]);
    } finally {
      probe.disconnect();
    }
    // The connections carry on with ready connections and no failed command.
    for (const pg of [a, b]) {
      expect(pg.logs.filter((r) => r.event === "redis command failed")).toEqual([]);
    }
  });

  it("a runtime policy change on one replica reaches the other", async () => {
    await expectPolicyPropagation(a, b);
  });

  it("DELETE /admin/v1/cache/{digest} drops the digest from both replicas' memory tiers", async () => {
    await expectDeleteReachesBoth(a, b);
  });

  it("a change whose pub/sub message never arrives is applied by the periodic reload", async () => {
    // ioredis moves a Cluster's subscriber to another node without a word, and a PUBLISH made in that gap is
    // lost. Here the change is stored exactly as a replica stores it (sealed, in the policy hash), with no
    // message at all: only the reconcile can bring it to the replica.
    const mac = createRedisEntryMac({ key: new Secret(TEST_REDIS_HMAC_KEY), logger: createMemoryLogger() });
    const hashKey = "pullgate:v1:policy";
    await withReconcilingReplica(async (c, writer) => {
      expect((await pullImage(c, "unsigned")).status).toBe(403);
      await writer.hset(hashKey, "proj", mac.seal(POLICY_ENTRY_KIND, [hashKey, "proj"], '{"mode":"audit"}'));
      await pullUntil(c, "unsigned", 200);
      await writer.hdel(hashKey, "proj");
      await pullUntil(c, "unsigned", 403);
    });
  });

  it("a cache deletion whose pub/sub message never arrives reaches the memory tier through the deletion log", async () => {
    // What DELETE /admin/v1/cache/{digest} does in Redis (the digest's verdicts gone, the deletion logged), with
    // no message: a replica that missed it still drops its in-memory allow within a reconcile period.
    const digest = img.signed.manifestDigest;
    await withReconcilingReplica(async (c, writer) => {
      const logged = (event: string) => c.logs.some((r) => r.event === event);
      // Its first read, which cannot tell what came before and clears the (still empty) memory tier.
      await waitFor(async () => logged("cache deletion log first read"), "the first read", 5_000);
      expect((await pullImage(c, "signed")).status).toBe(200);
      expect((await c.deps.cache.get(projFingerprint(c), digest))?.tier).toBe("memory");
      const index = `pullgate:v1:digest:{${digest}}`;
      for (const fp of await writer.smembers(index))
        await writer.del(`pullgate:v1:verdict:${fp}:{${digest}}`);
      await writer.del(index);
      await writer.eval(RECORD_DELETION_SCRIPT, 1, deletionLogKey("pullgate:v1:"), digest, "600000", "10000");
      await waitFor(
        async () => (await c.deps.cache.get(projFingerprint(c), digest)) === undefined,
        "the logged deletion to reach the memory tier",
        5_000,
      );
      expect(logged("cache deletions caught up")).toBe(true);
    });
  });
});

describe("Redis behind Sentinel (master, replica, 3 sentinels)", () => {
  let sentinel: RedisSentinelFixture;
  let a: TestPullgate;
  let b: TestPullgate;

  beforeAll(async () => {
    sentinel = await startRedisSentinel({ name: "mymaster", replicaCount: 1, sentinelCount: 3 });
    const redis = `redis:\n  sentinels: ${JSON.stringify(sentinel.sentinelUrls)}\n  name: mymaster\n  hmacKeyEnv: ${TEST_REDIS_HMAC_KEY_ENV}\n`;
    a = await startTestPullgate(upstreams(), `${redis}${projects()}`, { adminToken: ADMIN_TOKEN });
    b = await startTestPullgate(upstreams(), `${redis}${projects()}`, { adminToken: ADMIN_TOKEN });
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sentinel?.stop();
  });

  it("two replicas share verdicts, policy changes and cache deletions through the sentinels' master", async () => {
    await expectSharedVerdicts(a, b);
    await expectPolicyPropagation(a, b);
    await expectDeleteReachesBoth(a, b);
  });

  /**
   * Pulls on both replicas without pause while `failover` makes another server the master: every pull is served
   * or refused with 503, never allowed when it should be denied, and afterwards verdicts, policy changes and
   * deletions travel through the new master.
   */
  async function failoverUnderLoad(failover: () => Promise<void>): Promise<void> {
    const oldMaster = await sentinel.currentMasterPort();
    const count = (pg: TestPullgate, event: string) => pg.logs.filter((r) => r.event === event).length;
    const before = [a, b].map((pg) => ({
      down: count(pg, "redis connection down"),
      up: count(pg, "redis connection up"),
    }));
    const statuses = { signed: new Map<number, number>(), unsigned: new Map<number, number>() };
    let loading = true;
    const load = async (pg: TestPullgate): Promise<void> => {
      while (loading) {
        for (const name of ["signed", "unsigned"] as const) {
          const { status } = await pullImage(pg, name);
          statuses[name].set(status, (statuses[name].get(status) ?? 0) + 1);
        }
        // Drop both verdicts now and then so that Redis (and a fresh verification) stays on the pull path.
        for (const name of ["signed", "unsigned"] as const)
          await admin(pg, "DELETE", `/admin/v1/cache/${img[name].manifestDigest}`);
      }
    };
    const loaders = [load(a), load(b)];
    await new Promise((r) => setTimeout(r, 300));
    await failover();
    await waitFor(async () => (await sentinel.currentMasterPort()) !== oldMaster, "a new master", 20_000);
    const newMaster = await sentinel.currentMasterPort();
    expect([sentinel.master.port, ...sentinel.replicas.map((r) => r.port)]).toContain(newMaster);
    // Both replicas find the new master (writes succeed: a deletion answers 200, not 503).
    for (const pg of [a, b]) {
      await waitFor(
        async () => (await admin(pg, "DELETE", `/admin/v1/cache/${img.unsigned.manifestDigest}`)) === 200,
        "the replica to write to the new master",
        20_000,
      );
    }
    await new Promise((r) => setTimeout(r, 300));
    loading = false;
    await Promise.all(loaders);

    expect(
      [...statuses.unsigned.keys()].every((s) => s === 403 || s === 503),
      JSON.stringify([...statuses.unsigned]),
    ).toBe(true);
    expect(
      [...statuses.signed.keys()].every((s) => s === 200 || s === 503),
      JSON.stringify([...statuses.signed]),
    ).toBe(true);
    expect(statuses.unsigned.get(200)).toBeUndefined();

    await expectPolicyPropagation(a, b);
    await expectDeleteReachesBoth(a, b);
    // Each replica saw its connections to the old master go, and both (commands, subscriber) come back.
    for (const [i, pg] of [a, b].entries()) {
      expect(count(pg, "redis connection down")).toBeGreaterThan(before[i]?.down ?? 0);
      expect(count(pg, "redis connection up")).toBeGreaterThanOrEqual((before[i]?.up ?? 0) + 2);
    }
  }

  it("a failover under load: pulls are served or refused with 503, never wrongly allowed, and recover", async () => {
    await failoverUnderLoad(async () => {
      await withClients(sentinel.sentinels.slice(0, 1), async ([s]) => {
        await s?.call("SENTINEL", "FAILOVER", "mymaster");
      });
    });
  }, 90_000);

  it("a master that stops answering (SIGSTOP: hung, or cut off): the sentinels promote the replica and pullgate follows", async () => {
    const port = await sentinel.currentMasterPort();
    const hung = [sentinel.master, ...sentinel.replicas].find((s) => s.port === port);
    if (!hung) throw new Error(`no server on the master's port ${port}`);
    try {
      // Nothing is closed: connections to it stay open and unanswered, until pullgate's command timeout.
      await failoverUnderLoad(async () => hung.pause());
    } finally {
      hung.resume();
    }
  }, 90_000);
});
