import { readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { Redis } from "ioredis";
import { freePort, type RedisServer, type RedisServerTls, startRedisServer } from "../../src/local/index.ts";
import { makeTempDir, removeDir } from "./process.ts";

/**
 * Redis as operators run it, from real redis-server processes on free 127.0.0.1 ports, each in a temp dir that
 * stop() removes: a Redis Cluster (masters only, slots spread evenly, built with CLUSTER ADDSLOTSRANGE/MEET so
 * no redis-cli is needed) and a Sentinel deployment (a master, replicas, sentinels). With `tls`, every server
 * (sentinels included) speaks TLS only, and so do replication, the cluster bus and the sentinels' own connections.
 */

export interface RedisClusterFixture {
  nodes: RedisServer[];
  /** "redis://127.0.0.1:PORT" of every node ("rediss://" with TLS). */
  urls: string[];
  stop(): Promise<void>;
}

const SLOTS = 16_384;

/** `masters` cluster-enabled servers sharing the 16384 slots; resolves once every node says cluster_state:ok. */
export async function startRedisCluster(
  masters = 3,
  opts: {
    tls?: RedisServerTls;
    /** Nodes announce this host name, not their address, in the slot map (as managed TLS clusters do). */
    announceHostname?: string;
  } = {},
): Promise<RedisClusterFixture> {
  const dir = await makeTempDir("redis-cluster");
  const nodes: RedisServer[] = [];
  const busPorts: number[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(nodes.map((n) => n.stop().catch(() => undefined)));
    await removeDir(dir);
  };
  try {
    for (let i = 0; i < masters; i++) {
      const port = await freePort();
      const busPort = await freePort();
      busPorts.push(busPort);
      const nodeDir = join(dir, `node-${i}`);
      await makeDir(nodeDir);
      nodes.push(
        await startRedisServer({
          dir: nodeDir,
          port,
          tls: opts.tls,
          extraArgs: [
            "--cluster-enabled",
            "yes",
            "--cluster-port",
            String(busPort),
            "--cluster-config-file",
            join(nodeDir, "nodes.conf"),
            "--cluster-node-timeout",
            "2000",
            ...(opts.announceHostname === undefined
              ? []
              : [
                  "--cluster-announce-hostname",
                  opts.announceHostname,
                  "--cluster-preferred-endpoint-type",
                  "hostname",
                ]),
          ],
        }),
      );
    }
    await withClients(nodes, async (clients) => {
      const per = Math.ceil(SLOTS / masters);
      await Promise.all(
        clients.map((c, i) =>
          c.call("CLUSTER", "ADDSLOTSRANGE", String(i * per), String(Math.min(SLOTS, (i + 1) * per) - 1)),
        ),
      );
      const [first] = nodes;
      if (!first) throw new Error("no cluster node");
      await Promise.all(
        clients
          .slice(1)
          .map((c) => c.call("CLUSTER", "MEET", "127.0.0.1", String(first.port), String(busPorts[0]))),
      );
      await waitFor(async () => {
        for (const c of clients) {
          const info = String(await c.call("CLUSTER", "INFO"));
          if (!info.includes("cluster_state:ok") || !info.includes(`cluster_known_nodes:${masters}`))
            return false;
        }
        return true;
      }, "cluster_state:ok on every node");
    });
    return { nodes, urls: nodes.map((n) => n.url), stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

export interface RedisSentinelFixture {
  master: RedisServer;
  replicas: RedisServer[];
  sentinels: RedisServer[];
  /** "redis://127.0.0.1:PORT" of every sentinel ("rediss://" with TLS). */
  sentinelUrls: string[];
  name: string;
  /** The port of the server the sentinels currently name as master. */
  currentMasterPort(): Promise<number>;
  stop(): Promise<void>;
}

/**
 * A master, `replicaCount` replicas and `sentinelCount` sentinels (quorum: a majority) watching it as `name`,
 * with short timeouts (down after 1 s): resolves once every sentinel sees the master and its replicas.
 */
export async function startRedisSentinel(
  opts: { name?: string; replicaCount?: number; sentinelCount?: number; tls?: RedisServerTls } = {},
): Promise<RedisSentinelFixture> {
  const name = opts.name ?? "mymaster";
  const dir = await makeTempDir("redis-sentinel");
  const all: RedisServer[] = [];
  const stop = async (): Promise<void> => {
    await Promise.all(all.map((n) => n.stop().catch(() => undefined)));
    await removeDir(dir);
  };
  try {
    const start = async (sub: string, more: Partial<Parameters<typeof startRedisServer>[0]> = {}) => {
      const d = join(dir, sub);
      await makeDir(d);
      const server = await startRedisServer({ dir: d, tls: opts.tls, ...more });
      all.push(server);
      return server;
    };
    const master = await start("master");
    const replicas: RedisServer[] = [];
    for (let i = 0; i < (opts.replicaCount ?? 1); i++) {
      replicas.push(
        await start(`replica-${i}`, { extraArgs: ["--replicaof", "127.0.0.1", String(master.port)] }),
      );
    }
    const sentinelCount = opts.sentinelCount ?? 3;
    const quorum = Math.floor(sentinelCount / 2) + 1;
    const sentinels: RedisServer[] = [];
    for (let i = 0; i < sentinelCount; i++) {
      const d = join(dir, `sentinel-${i}`);
      await makeDir(d);
      const configFile = join(d, "sentinel.conf");
      await writeFile(
        configFile,
        [
          `sentinel monitor ${name} 127.0.0.1 ${master.port} ${quorum}`,
          `sentinel down-after-milliseconds ${name} 1000`,
          `sentinel failover-timeout ${name} 4000`,
          `sentinel parallel-syncs ${name} 1`,
          "",
        ].join("\n"),
      );
      const sentinel = await startRedisServer({
        dir: d,
        configFile,
        tls: opts.tls,
        extraArgs: ["--sentinel"],
      });
      all.push(sentinel);
      sentinels.push(sentinel);
    }
    const currentMasterPort = async (): Promise<number> =>
      withClients(sentinels.slice(0, 1), async ([s]) => {
        const addr = (await s?.call("SENTINEL", "GET-MASTER-ADDR-BY-NAME", name)) as string[] | null;
        return Number(addr?.[1]);
      });
    await withClients([...replicas, ...sentinels], async (clients) => {
      await waitFor(async () => {
        for (const c of clients.slice(0, replicas.length)) {
          if (!String(await c.info("replication")).includes("master_link_status:up")) return false;
        }
        for (const c of clients.slice(replicas.length)) {
          const replicasSeen = (await c.call("SENTINEL", "REPLICAS", name)) as unknown[];
          const sentinelsSeen = (await c.call("SENTINEL", "SENTINELS", name)) as unknown[];
          if (replicasSeen.length < replicas.length || sentinelsSeen.length < sentinelCount - 1) return false;
        }
        return true;
      }, "replicas in sync and sentinels seeing each other");
    });
    return {
      master,
      replicas,
      sentinels,
      sentinelUrls: sentinels.map((s) => s.url),
      name,
      currentMasterPort,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Plain ioredis clients to the given servers (with their password; over TLS, trusting the server's CA, to a TLS
 * server) for the duration of `fn`.
 */
export async function withClients<T>(
  servers: readonly RedisServer[],
  fn: (clients: Redis[]) => Promise<T>,
): Promise<T> {
  // The URL carries the password, if any, and the scheme (rediss:// for TLS).
  const clients = servers.map(
    (s) =>
      new Redis(s.url, {
        maxRetriesPerRequest: 1,
        lazyConnect: true,
        // The fixture's own administration: the CA is checked, the name is not (a certificate may name only a
        // host name while these clients dial 127.0.0.1). pullgate's connections always check both.
        ...(s.tls === undefined
          ? {}
          : { tls: { ca: readFileSync(s.tls.caCertPath), checkServerIdentity: () => undefined } }),
      }),
  );
  try {
    await Promise.all(clients.map((c) => c.connect()));
    return await fn(clients);
  } finally {
    for (const c of clients) c.disconnect();
  }
}

/** Polls `check` every 100 ms until it is true; throws after `timeoutMs`. */
export async function waitFor(
  check: () => Promise<boolean>,
  what: string,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await check()) return;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function makeDir(path: string): Promise<void> {
  await mkdir(path, { recursive: true });
}
