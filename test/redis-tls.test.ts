import { mkdir, readFile } from "node:fs/promises";
import { Socket } from "node:net";
import { join } from "node:path";
import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../src/config/index.ts";
import { createRedisConnection } from "../src/redis/index.ts";
import { createMemoryLogger } from "../src/telemetry/index.ts";
import { startTestPullgate, TEST_REDIS_HMAC_KEY_ENV, type TestPullgate } from "./support/pullgate.ts";
import { type RedisServer, type RedisServerTls, startRedis } from "./support/redis.ts";
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
import { createTestCa, issueServerCert, type TestCa } from "./support/tls.ts";

// Managed Redis (ElastiCache with in-transit encryption, Azure Cache, Memorystore) speaks TLS only. Every
// redis-server here listens on a TLS port and on no plain port (`--port 0`), with a certificate from a private
// CA that pullgate trusts through `redis.caFile`: two replicas share verdicts through one server, a 3-master
// cluster and a Sentinel deployment (across a failover), and a server pullgate cannot verify is refused, with
// the TLS error code (never the URL or password) in the log, while pulls are judged without Redis.

const ADMIN_TOKEN = "redis-tls-admin-token";
const PASSWORD = "tls-only-s3cret";

let images: SignedAndUnsigned;
let img: SignedAndUnsigned["img"];
let work: string;
/** The private CA pullgate trusts (redis.caFile), and the servers' certificate (127.0.0.1, localhost) from it. */
let trustedCa: TestCa;
let caFile: string;
let serverTls: RedisServerTls;

beforeAll(async () => {
  images = await startSignedAndUnsigned("redis-tls-test");
  img = images.img;
  work = images.work;
  trustedCa = await createTestCa(await subDir("ca"));
  caFile = trustedCa.caCertPath;
  serverTls = {
    // clientAuth too: cluster nodes present it to each other on the cluster bus.
    ...(await issueServerCert(trustedCa, "redis", ["IP:127.0.0.1", "DNS:localhost"], { clientAuth: true })),
    caCertPath: caFile,
  };
}, 120_000);

afterAll(async () => {
  await images?.stop();
});

async function subDir(name: string): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir, { recursive: true });
  return dir;
}

/** A `redis:` section: `where` (url / cluster / sentinels lines), the CA file unless `ca` is null, the HMAC key. */
function redisYaml(where: string, ca: string | null = caFile): string {
  const caLine = ca === null ? "" : `  caFile: ${JSON.stringify(ca)}\n`;
  return `redis:\n${where}${caLine}  hmacKeyEnv: ${TEST_REDIS_HMAC_KEY_ENV}\n`;
}

const startReplica = (redis: string) =>
  startTestPullgate(images.upstreamsYaml, `${redis}${images.projectsYaml}`, { adminToken: ADMIN_TOKEN });

const verdictKey = (pg: TestPullgate, digest: string, cluster = false) =>
  `pullgate:v1:verdict:${projFingerprint(pg)}:${cluster ? `{${digest}}` : digest}`;

const admin = (pg: TestPullgate, method: string, path: string) => adminStatus(pg, ADMIN_TOKEN, method, path);

/** Both replicas' connections (commands and subscriber) came up, and none ever failed. */
function expectConnectionsUp(...pgs: TestPullgate[]): void {
  for (const pg of pgs) {
    const up = pg.logs.filter((r) => r.event === "redis connection up").map((r) => r.connection);
    expect(new Set(up)).toEqual(new Set(["cache", "policy-subscriber"]));
    expect(pg.logs.filter((r) => r.event === "redis command failed")).toEqual([]);
  }
}

/** What a plain-text PING gets from `port`: "" when the connection is closed or reset without an answer. */
function plainPing(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = new Socket();
    let reply = "";
    const done = (): void => {
      socket.destroy();
      resolve(reply);
    };
    socket.setTimeout(2_000, done);
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
    });
    socket.once("error", done);
    socket.once("close", done);
    socket.connect({ host: "127.0.0.1", port }, () => socket.write("PING\r\n"));
  });
}

/**
 * Every server (sentinels included) answers on its TLS port only: a plain-text PING there gets no PONG, and a
 * data node has no plain port (`port 0`). So pullgate's working connections can only be TLS ones.
 */
async function expectTlsOnly(servers: readonly RedisServer[]): Promise<void> {
  for (const s of servers) expect(s.url.startsWith("rediss://"), s.url).toBe(true);
  await withClients(servers, async (clients) => {
    for (const [i, c] of clients.entries()) {
      // A sentinel has no CONFIG command; its plain-text PING below is refused like the others'.
      if (String(await c.info("server")).includes("redis_mode:sentinel")) continue;
      expect(await c.call("CONFIG", "GET", "port")).toEqual(["port", "0"]);
      expect(await c.call("CONFIG", "GET", "tls-port")).toEqual(["tls-port", String(servers[i]?.port)]);
    }
  });
  for (const s of servers) expect(await plainPing(s.port), `plain text to ${s.port}`).not.toContain("PONG");
}

describe("one Redis server over TLS (rediss://, password)", () => {
  let server: RedisServer;
  let a: TestPullgate;
  let b: TestPullgate;

  beforeAll(async () => {
    server = await startRedis({ tls: serverTls, password: PASSWORD });
    const redis = redisYaml(`  url: ${JSON.stringify(server.url)}\n`);
    a = await startReplica(redis);
    b = await startReplica(redis);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await server?.stop();
  });

  it("two replicas share verdicts through it", async () => {
    await expectTlsOnly([server]);
    await expectVerdictsShared(a, b);
    expectConnectionsUp(a, b);
    // The verdict is in that server (reached with its password, over TLS).
    await withClients([server], async ([c]) => {
      expect(await c?.exists(verdictKey(a, img.signed.manifestDigest))).toBe(1);
    });
  });
});

describe("Redis Cluster over TLS (3 masters, tls-cluster yes)", () => {
  let cluster: RedisClusterFixture;
  let owner: RedisServer;
  let a: TestPullgate;
  let b: TestPullgate;

  beforeAll(async () => {
    cluster = await startRedisCluster(3, { tls: serverTls });
    // The seed is a node that does NOT own the signed digest's slot: pullgate must discover the owner from the
    // slot map (which names its TLS port) and reach it over TLS with the same CA.
    owner = await slotOwner(cluster, `{${img.signed.manifestDigest}}`);
    const seed = cluster.nodes.find((n) => n !== owner);
    if (!seed) throw new Error("no other node");
    const redis = redisYaml(`  cluster: ${JSON.stringify([seed.url])}\n`);
    a = await startReplica(redis);
    b = await startReplica(redis);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await cluster?.stop();
  });

  it("two replicas share verdicts through the cluster, on a node found through the slot map", async () => {
    await expectTlsOnly(cluster.nodes);
    await expectVerdictsShared(a, b);
    expectConnectionsUp(a, b);
    await withClients([owner], async ([c]) => {
      expect(await c?.exists(verdictKey(a, img.signed.manifestDigest, true))).toBe(1);
    });
  });
});

describe("Redis Cluster over TLS that announces host names, with certificates naming only the host (as managed ones do)", () => {
  let cluster: RedisClusterFixture;
  let a: TestPullgate;
  let b: TestPullgate;

  beforeAll(async () => {
    // No IP in the certificate: dialling a node by the address "localhost" resolves to fails the name check.
    const named = {
      ...(await issueServerCert(trustedCa, "redis-named", ["DNS:localhost"], { clientAuth: true })),
      caCertPath: caFile,
    };
    cluster = await startRedisCluster(3, { tls: named, announceHostname: "localhost" });
    const seeds = cluster.nodes.map((n) => `rediss://localhost:${n.port}`);
    const redis = redisYaml(`  cluster: ${JSON.stringify(seeds.slice(0, 1))}\n`);
    a = await startReplica(redis);
    b = await startReplica(redis);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await cluster?.stop();
  });

  it("reaches every node by its announced name, the name its certificate carries", async () => {
    await withClients(cluster.nodes.slice(0, 1), async ([c]) => {
      expect(JSON.stringify(await c?.call("CLUSTER", "SLOTS"))).toContain('"localhost"');
    });
    await expectVerdictsShared(a, b);
    expectConnectionsUp(a, b);
  });
});

describe("Redis behind Sentinel over TLS (sentinels and data nodes TLS only)", () => {
  let sentinel: RedisSentinelFixture;
  let a: TestPullgate;
  let b: TestPullgate;

  beforeAll(async () => {
    sentinel = await startRedisSentinel({
      name: "mymaster",
      replicaCount: 1,
      sentinelCount: 3,
      tls: serverTls,
    });
    const redis = redisYaml(`  sentinels: ${JSON.stringify(sentinel.sentinelUrls)}\n  name: mymaster\n`);
    a = await startReplica(redis);
    b = await startReplica(redis);
  }, 120_000);

  afterAll(async () => {
    await Promise.all([a?.stop(), b?.stop()]);
    await sentinel?.stop();
  });

  const servers = () => [sentinel.master, ...sentinel.replicas];

  it("two replicas share verdicts through the master the sentinels name", async () => {
    await expectTlsOnly([...servers(), ...sentinel.sentinels]);
    await expectVerdictsShared(a, b);
    expectConnectionsUp(a, b);
  });

  it("after SENTINEL FAILOVER both replicas follow the new master over TLS and share verdicts through it", async () => {
    const oldMaster = await sentinel.currentMasterPort();
    const mark = [a, b].map((pg) => pg.logs.length);
    await withClients(sentinel.sentinels.slice(0, 1), async ([s]) => {
      expect(await s?.call("SENTINEL", "FAILOVER", "mymaster")).toBe("OK");
    });
    await waitFor(async () => (await sentinel.currentMasterPort()) !== oldMaster, "a new master", 20_000);
    const newMaster = servers().find((s) => s.port !== oldMaster);
    if (!newMaster) throw new Error("no new master");
    expect(await sentinel.currentMasterPort()).toBe(newMaster.port);
    // Both connections of each replica are dropped (the sentinels announce +switch-master over TLS) and come
    // back to the master the sentinels now name (over TLS: nothing else answers).
    for (const [i, pg] of [a, b].entries()) {
      await waitFor(
        async () =>
          ["cache", "policy-subscriber"].every((name) =>
            pg.logs.slice(mark[i]).some((r) => r.event === "redis connection up" && r.connection === name),
          ),
        "both connections of the replica back after the failover",
        20_000,
      );
    }
    // Each replica writes to the new master (a deletion answers 200, not 503).
    for (const pg of [a, b]) {
      await waitFor(
        async () => (await admin(pg, "DELETE", `/admin/v1/cache/${img.unsigned.manifestDigest}`)) === 200,
        "the replica to write to the new master",
        20_000,
      );
    }
    // Forget both verdicts everywhere (the deletion reaches b through the new master's pub/sub)…
    for (const name of ["signed", "unsigned"] as const) {
      expect(await admin(a, "DELETE", `/admin/v1/cache/${img[name].manifestDigest}`)).toBe(200);
    }
    await waitFor(
      async () => (await b.deps.cache.get(projFingerprint(b), img.signed.manifestDigest)) === undefined,
      "the deletion to reach b",
      10_000,
    );
    // …so that a verifies again and stores on the new master, and b reads it from there.
    await expectVerdictsShared(a, b);
    await withClients([newMaster], async ([c]) => {
      expect(String(await c?.info("replication"))).toContain("role:master");
      expect(await c?.exists(verdictKey(a, img.signed.manifestDigest))).toBe(1);
    });
  }, 90_000);
});

describe("certificate verification: a Redis server pullgate cannot verify is refused", () => {
  it("a CA with a redis:// URL is refused when the connection is made, never used for plain text", () => {
    const opts = { logger: createMemoryLogger(), name: "cache", tlsCa: "-----BEGIN CERTIFICATE-----" };
    const plain = [
      { kind: "standalone" as const, url: new Secret("redis://:pw@127.0.0.1:1") },
      { kind: "cluster" as const, nodes: [new Secret("redis://127.0.0.1:1")], password: undefined },
      {
        kind: "sentinel" as const,
        sentinels: [new Secret("redis://127.0.0.1:1")],
        name: "m",
        password: undefined,
      },
    ];
    for (const topology of plain) {
      expect(() => createRedisConnection(topology, opts), topology.kind).toThrow(
        'redis connection "cache": a CA is given but the URLs are not rediss://',
      );
    }
  });

  const started: Array<{ stop(): Promise<void> }> = [];
  afterAll(async () => {
    for (const s of started.reverse()) await s.stop();
  });

  /**
   * A TLS-only server with `tls` (and PASSWORD), and a pullgate pointed at it with `ca` (null: Node's default
   * CAs). pullgate never connects: its log says why, with `code`; pulls are judged without Redis (verified
   * live, 200 and 403) and nothing reaches the server.
   */
  async function expectRefused(tls: RedisServerTls, ca: string | null, code: string): Promise<void> {
    const server = await startRedis({ tls, password: PASSWORD });
    started.push(server);
    const pg = await startReplica(redisYaml(`  url: ${JSON.stringify(server.url)}\n`, ca));
    started.push(pg);
    const down = () => pg.logs.find((r) => r.event === "redis connection down" && r.connection === "cache");
    await waitFor(async () => down() !== undefined, "redis connection down", 10_000);
    expect(down()).toMatchObject({ level: "warn", code, wasConnected: false });
    expect(
      pg.logs.some((r) => r.event === "redis not reachable at startup; runtime policies load when it is"),
    ).toBe(true);

    const before = lookupsOf(pg);
    expect((await pullImage(pg, "signed")).status).toBe(200);
    expect((await pullImage(pg, "unsigned")).status).toBe(403);
    expect(lookupsOf(pg) - before, "both verified live: no verdict from Redis").toBe(2);
    expect(pg.logs.filter((r) => r.event === "redis connection up")).toEqual([]);
    const text = JSON.stringify(pg.logs);
    for (const secret of [PASSWORD, "rediss://", `127.0.0.1:${server.port}`])
      expect(text).not.toContain(secret);

    // The server saw no command of pullgate's (no fallback to unverified TLS; plain text has no port).
    expect(await plainPing(server.port)).not.toContain("PONG");
    // A client that trusts the server's own CA and ignores its name: only to look inside.
    const probe = new Redis(server.url, {
      tls: { ca: await readFile(tls.caCertPath), checkServerIdentity: () => undefined },
      lazyConnect: true,
    });
    try {
      await probe.connect();
      expect(await probe.dbsize()).toBe(0);
      const clients = String(await probe.call("CLIENT", "LIST"));
      expect(clients).not.toContain("pullgate-");
    } finally {
      probe.disconnect();
    }
  }

  // redis-server sends its CA along with its certificate, so Node names the untrusted root in the chain.
  it("a certificate from a CA pullgate does not trust (SELF_SIGNED_CERT_IN_CHAIN)", async () => {
    const rogueCa = await createTestCa(await subDir("rogue-ca"));
    const rogue = await issueServerCert(rogueCa, "redis", ["IP:127.0.0.1", "DNS:localhost"]);
    await expectRefused({ ...rogue, caCertPath: rogueCa.caCertPath }, caFile, "SELF_SIGNED_CERT_IN_CHAIN");
  });

  it("a certificate from the trusted CA for another name (ERR_TLS_CERT_ALTNAME_INVALID)", async () => {
    const other = await issueServerCert(trustedCa, "other", ["DNS:redis.other.example"]);
    await expectRefused({ ...other, caCertPath: caFile }, caFile, "ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("without redis.caFile only Node's default CAs are trusted: the private CA's server is refused", async () => {
    await expectRefused(serverTls, null, "SELF_SIGNED_CERT_IN_CHAIN");
  });
});

/** The node that owns `key`'s hash slot, from CLUSTER KEYSLOT and CLUSTER SLOTS (which name TLS ports). */
async function slotOwner(cluster: RedisClusterFixture, key: string): Promise<RedisServer> {
  return withClients(cluster.nodes.slice(0, 1), async ([c]) => {
    const slot = Number(await c?.call("CLUSTER", "KEYSLOT", key));
    const ranges = (await c?.call("CLUSTER", "SLOTS")) as Array<[number, number, [string, number]]>;
    const range = ranges.find(([from, to]) => slot >= from && slot <= to);
    const node = cluster.nodes.find((n) => n.port === Number(range?.[2][1]));
    if (!node) throw new Error(`no node owns slot ${slot}`);
    return node;
  });
}
