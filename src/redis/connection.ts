import type { ConnectionOptions } from "node:tls";
import { Cluster, type ClusterOptions, Redis, type RedisOptions, type SentinelAddress } from "ioredis";
import type { Config, Secret } from "../config/index.ts";
import type { Logger, PullgateMetrics } from "../telemetry/index.ts";

/** Where Redis is (config/types.ts): one server, a Redis Cluster, or a master behind Sentinel. */
export type RedisTopology = NonNullable<Config["redis"]>["topology"];

/**
 * One Redis connection (ioredis) that can neither crash the process nor hang a request:
 *  - an "error" listener is always attached (an unhandled "error" event would otherwise only be printed by
 *    ioredis, and errors thrown from listeners could escape);
 *  - no offline queue: while disconnected every command is rejected at once, so callers fall back immediately;
 *  - every command has a client-side timeout (`commandTimeoutMs`, default 200 ms), and a socket that stops
 *    answering (a hung server) is torn down after `socketTimeoutMs` so that later commands fail fast;
 *  - in-flight commands are rejected when the connection drops (maxRetriesPerRequest 0), never resent later;
 *  - it reconnects forever with capped exponential backoff.
 * It logs ONE line when the connection goes down and ONE when it is back, never per failed command, and never
 * the URL (which may carry a password).
 *
 * The creator owns the connection and closes it; the stores and caches built on it never close it.
 *
 * The topology decides the client, with the same options, readiness, backoff and log lines for all three:
 *  - standalone: `new Redis(url)`;
 *  - cluster: `new Cluster(seedNodes)`: commands go to the node owning their key's slot (every multi-key command
 *    and script of this folder keeps its keys in one slot); "ready" once the slot map is loaded; pub/sub through
 *    the Cluster's single subscriber connection (a PUBLISH on any node reaches every node's subscribers);
 *  - sentinel: `new Redis({ sentinels, name })`: the sentinels name the master on every (re)connect, a
 *    `+switch-master` they announce drops the connection at once (failoverDetector), and a READONLY answer (a
 *    demoted master) reconnects to find the new one.
 */
export interface RedisConnection {
  /** Low-cardinality name for logs and metrics ("cache", "policy-subscriber", …). */
  readonly name: string;
  /**
   * The ioredis client (a Cluster for a Redis Cluster). Use it only for commands; the connection owns its event
   * listeners and lifecycle.
   */
  readonly client: Redis | Cluster;
  /** What the client talks to: "cluster" means keys used together must share a hash slot. */
  readonly topology: RedisTopology["kind"];
  /** True when commands can be sent now (connected, handshake done). */
  isReady(): boolean;
  /** Resolves true as soon as the connection is ready, false after `timeoutMs` (never rejects). */
  whenReady(timeoutMs: number): Promise<boolean>;
  /** Calls `listener` every time the connection becomes ready (first connect and every reconnect). */
  onReady(listener: () => void): () => void;
  /**
   * Records a failed or skipped operation (the caller fell back). While the connection is down this only counts;
   * while it claims to be up (timeouts of a hung server, OOM, READONLY…) it also logs, at most one line per
   * `failureLogIntervalMs`, with the number of failures since the previous line.
   */
  reportFailure(operation: string, err?: unknown): void;
  stats(): RedisConnectionStats;
  /** QUIT (bounded by the command timeout), then disconnect. No reconnect afterwards. Idempotent. */
  close(): Promise<void>;
}

export interface RedisConnectionStats {
  ready: boolean;
  /** Operations that failed or were skipped because Redis was unavailable, since creation. */
  failures: number;
  /** Times the connection went down since creation. */
  disconnects: number;
}

export interface RedisConnectionOptions {
  logger: Logger;
  name: string;
  /** Client-side timeout of every command. Default 200 ms. */
  commandTimeoutMs?: number;
  /** TCP connect timeout. Default 1000 ms. */
  connectTimeoutMs?: number;
  /** A connection with commands in flight that receives nothing for this long is torn down. Default 1000 ms. */
  socketTimeoutMs?: number;
  /** Cap of the reconnect backoff (50 ms doubling, plus up to 10% jitter). Default 2000 ms. */
  maxReconnectDelayMs?: number;
  /** Minimum interval between two "redis command failed" lines. Default 10 s. */
  failureLogIntervalMs?: number;
  /** pullgate_redis_up{connection=name}: 1 while ready, else 0. */
  metrics?: Pick<PullgateMetrics, "redisUp"> | undefined;
  /**
   * rediss:// only: the CA certificates (PEM) trusted for the servers and sentinels, instead of Node's default
   * CAs (config `redis.caFile`). The certificate chain and name are always checked.
   */
  tlsCa?: string | undefined;
}

/** Event names this module logs. */
export const RedisLogEvents = {
  down: "redis connection down",
  up: "redis connection up",
  commandFailed: "redis command failed",
} as const;

export function createRedisConnection(
  target: Secret | RedisTopology,
  opts: RedisConnectionOptions,
): RedisConnection {
  const { logger, name } = opts;
  const topology: RedisTopology = "kind" in target ? target : { kind: "standalone", url: target };
  const commandTimeoutMs = opts.commandTimeoutMs ?? 200;
  const maxReconnectDelayMs = opts.maxReconnectDelayMs ?? 2_000;
  const failureLogIntervalMs = opts.failureLogIntervalMs ?? 10_000;
  const redact = createRedactor(secretsOf(topology));
  const backoff = (attempt: number): number => {
    const base = Math.min(50 * 2 ** Math.min(attempt - 1, 16), maxReconnectDelayMs);
    return Math.round(base + Math.random() * base * 0.1);
  };
  const common = {
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    commandTimeout: commandTimeoutMs,
    connectTimeout: opts.connectTimeoutMs ?? 1_000,
    socketTimeout: opts.socketTimeoutMs ?? 1_000,
    // ioredis' own "connection name" (CLIENT SETNAME) helps operators in CLIENT LIST.
    connectionName: `pullgate-${name}`,
    // ioredis re-subscribes on reconnect without handling the promise: when that SUBSCRIBE fails
    // (connection lost again) it is an unhandled rejection, which ends a Node process. The policy
    // store subscribes itself on every "ready".
    autoResubscribe: false,
  } satisfies RedisOptions;
  const client = createClient(topology, name, common, backoff, opts.tlsCa);

  type State = "connecting" | "up" | "down" | "closed";
  let state: State = "connecting";
  let downSince = Date.now();
  let failures = 0;
  let disconnects = 0;
  let lastFailureLog = 0;
  let failuresSinceLog = 0;
  const readyListeners = new Set<() => void>();
  opts.metrics?.redisUp.track(name, () => state === "up");

  const markDown = (reason: string, err?: unknown): void => {
    if (state === "down" || state === "closed") return;
    const wasUp = state === "up";
    state = "down";
    downSince = Date.now();
    if (wasUp) disconnects++;
    logger.log("warn", RedisLogEvents.down, {
      connection: name,
      reason,
      ...errorFields(err, redact),
      // Before the first successful connect this is "never connected"; afterwards a lost connection.
      wasConnected: wasUp,
    });
  };

  client.on("error", (err: unknown) => {
    // Connection-level errors only (command errors reject their promise). One line per outage: markDown()
    // logs only on the transition.
    markDown("error", err);
  });
  client.on("close", () => markDown("closed"));
  client.on("ready", () => {
    if (state === "closed") return;
    const previous = state;
    state = "up";
    logger.log("info", RedisLogEvents.up, {
      connection: name,
      ...(previous === "down" ? { downMs: Date.now() - downSince } : {}),
    });
    for (const listener of readyListeners) {
      try {
        listener();
      } catch (err) {
        logger.log("error", "redis ready listener failed", { connection: name, ...errorFields(err, redact) });
      }
    }
  });

  let closing: Promise<void> | undefined;

  return {
    name,
    client,
    topology: topology.kind,
    isReady: () => client.status === "ready" && state !== "closed",
    whenReady(timeoutMs) {
      if (client.status === "ready") return Promise.resolve(true);
      if (state === "closed") return Promise.resolve(false);
      return new Promise((resolve) => {
        const onReady = (): void => {
          clearTimeout(timer);
          resolve(true);
        };
        const timer = setTimeout(() => {
          client.off("ready", onReady);
          resolve(false);
        }, timeoutMs);
        client.once("ready", onReady);
      });
    },
    onReady(listener) {
      readyListeners.add(listener);
      return () => {
        readyListeners.delete(listener);
      };
    },
    reportFailure(operation, err) {
      failures++;
      if (state !== "up" || client.status !== "ready") return;
      failuresSinceLog++;
      const now = Date.now();
      if (now - lastFailureLog < failureLogIntervalMs) return;
      logger.log("warn", RedisLogEvents.commandFailed, {
        connection: name,
        operation,
        ...errorFields(err, redact),
        failures: failuresSinceLog,
      });
      lastFailureLog = now;
      failuresSinceLog = 0;
    },
    stats: () => ({ ready: client.status === "ready" && state !== "closed", failures, disconnects }),
    close() {
      closing ??= (async () => {
        state = "closed";
        readyListeners.clear();
        if (client.status === "ready") {
          try {
            await client.quit();
          } catch {
            // timed out or connection lost: disconnect below
          }
        }
        client.disconnect(false);
      })();
      return closing;
    },
  };
}

type CommonOptions = Pick<
  RedisOptions,
  | "maxRetriesPerRequest"
  | "autoResendUnfulfilledCommands"
  | "commandTimeout"
  | "connectTimeout"
  | "socketTimeout"
  | "connectionName"
  | "autoResubscribe"
>;

/** The ioredis client of a topology; no URL text in any error it throws. */
function createClient(
  topology: RedisTopology,
  name: string,
  common: CommonOptions,
  backoff: (attempt: number) => number,
  tlsCa: string | undefined,
): Redis | Cluster {
  const where = `redis connection "${name}"`;
  // Verified TLS (Node's defaults: rejectUnauthorized, the host name checked), against tlsCa when given.
  const tls: ConnectionOptions = tlsCa === undefined ? {} : { ca: tlsCa };
  const refuseCaWithoutTls = (usesTls: boolean | undefined): void => {
    if (tlsCa !== undefined && usesTls !== true) {
      throw new Error(`${where}: a CA is given but the URLs are not rediss://`);
    }
  };
  switch (topology.kind) {
    case "standalone": {
      const rawUrl = topology.url.reveal();
      if (/^redis\+(cluster|sentinel):$/.test(rawUrl)) {
        throw new Error(`${where}: a Redis ${rawUrl.slice(6, -1)} is reached through config.redis.topology`);
      }
      if (!/^rediss?:\/\//.test(rawUrl)) {
        // The URL itself is never part of the message.
        throw new Error(`${where}: the URL must start with redis:// or rediss://`);
      }
      const usesTls = rawUrl.startsWith("rediss://");
      refuseCaWithoutTls(usesTls);
      return new Redis(rawUrl, {
        ...common,
        ...(usesTls ? { tls } : {}),
        enableOfflineQueue: false,
        retryStrategy: backoff,
      });
    }
    case "cluster": {
      const nodes = topology.nodes.map((url) => parseNodeUrl(url, where));
      const auth = nodes.find((n) => n.password !== undefined);
      const password = topology.password?.reveal() ?? auth?.password;
      refuseCaWithoutTls(nodes[0]?.tls);
      const options: ClusterOptions = {
        // With TLS, nodes are dialled by the names given and announced, never by an address ioredis resolved
        // them to: a certificate names the host (a managed cluster announces host names), and checking it
        // against an IP would fail, or tempt someone to switch the check off.
        ...(nodes[0]?.tls ? { dnsLookup: (address, lookedUp) => lookedUp(null, address) } : {}),
        enableOfflineQueue: false,
        clusterRetryStrategy: backoff,
        // A failover or resharding answers MOVED/ASK/TRYAGAIN/CLUSTERDOWN for a moment: a few quick retries,
        // never a long wait on the pull path.
        maxRedirections: 4,
        retryDelayOnFailover: 50,
        retryDelayOnClusterDown: 50,
        retryDelayOnTryAgain: 50,
        slotsRefreshTimeout: common.connectTimeout ?? 1_000,
        redisOptions: {
          ...common,
          ...(password === undefined ? {} : { password }),
          ...(auth?.username ? { username: auth.username } : {}),
          ...(nodes[0]?.tls ? { tls } : {}),
        },
      };
      return new Cluster(
        nodes.map(({ host, port }) => ({ host, port })),
        options,
      );
    }
    case "sentinel": {
      const sentinels = topology.sentinels.map((url) => parseNodeUrl(url, where));
      const auth = sentinels.find((n) => n.password !== undefined);
      const usesTls = sentinels[0]?.tls === true;
      refuseCaWithoutTls(usesTls);
      const password = topology.password?.reveal();
      return new Redis({
        ...common,
        sentinels: sentinels.map(({ host, port }): SentinelAddress => ({ host, port })),
        name: topology.name,
        ...(auth?.password === undefined ? {} : { sentinelPassword: auth.password }),
        ...(auth?.username ? { sentinelUsername: auth.username } : {}),
        ...(password === undefined ? {} : { password }),
        // TLS to the sentinels (sentinelTLS) and to the master they name (tls + enableTLSForSentinelMode).
        ...(usesTls ? { tls, sentinelTLS: tls, enableTLSForSentinelMode: true } : {}),
        enableOfflineQueue: false,
        retryStrategy: backoff,
        sentinelRetryStrategy: backoff,
        // Drop the connection as soon as a sentinel announces +switch-master, instead of waiting for the old
        // master to fail; and a READONLY answer means we are talking to a demoted master: reconnect.
        failoverDetector: true,
        reconnectOnError: (err) => (err.message.startsWith("READONLY") ? 1 : false),
      });
    }
  }
}

interface NodeAddress {
  host: string;
  port: number;
  tls: boolean;
  username: string | undefined;
  password: string | undefined;
}

function parseNodeUrl(url: Secret, where: string): NodeAddress {
  let parsed: URL;
  try {
    parsed = new URL(url.reveal());
  } catch {
    throw new Error(`${where}: a node URL is not a URL`);
  }
  if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
    throw new Error(`${where}: the URL must start with redis:// or rediss://`);
  }
  const host = parsed.hostname.replace(/^\[(.*)\]$/, "$1");
  return {
    host,
    port: parsed.port === "" ? 6379 : Number(parsed.port),
    tls: parsed.protocol === "rediss:",
    username: parsed.username === "" ? undefined : decodeURIComponent(parsed.username),
    password: parsed.password === "" ? undefined : decodeURIComponent(parsed.password),
  };
}

/** Every text that must not reach a log line: the URLs and the passwords they or the topology carry. */
function secretsOf(topology: RedisTopology): string[] {
  switch (topology.kind) {
    case "standalone":
      return [topology.url.reveal()];
    case "cluster":
      return [...topology.nodes.map((u) => u.reveal()), topology.password?.reveal() ?? ""];
    case "sentinel":
      return [...topology.sentinels.map((u) => u.reveal()), topology.password?.reveal() ?? ""];
  }
}

/** Log fields for an error: its code and name, and a message with the URL and password cut out. */
function errorFields(err: unknown, redact: (s: string) => string): Record<string, unknown> {
  if (err === undefined) return {};
  if (!(err instanceof Error)) return { error: redact(String(err)) };
  const code = (err as { code?: unknown }).code;
  return {
    ...(typeof code === "string" ? { code } : {}),
    errorName: err.name,
    error: redact(err.message),
  };
}

function createRedactor(raw: readonly string[]): (s: string) => string {
  const secrets: string[] = [];
  for (const rawUrl of raw) {
    secrets.push(rawUrl);
    try {
      const parsed = new URL(rawUrl);
      if (parsed.password) {
        secrets.push(parsed.password, decodeURIComponent(parsed.password));
      }
    } catch {
      // not a URL (or a bare password): only the raw string is redacted
    }
  }
  const needles = secrets.filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  return (s) => {
    let out = s;
    for (const needle of needles) out = out.split(needle).join("[redacted]");
    return out;
  };
}
