import { randomUUID } from "node:crypto";
import type { ChainableCommander, Redis } from "ioredis";
import type { Logger } from "../telemetry/logger.ts";

/**
 * The runtime policy-override store: the admin API writes per-project overrides of the config file's policy.
 * With Redis every replica sharing it sees a change within a second (pub/sub) and overrides survive restarts;
 * without Redis they live in this process's memory.
 */
export interface PolicyStore {
  /** Every stored override: project name → the JSON object the admin API stored (opaque to the store). */
  load(): Promise<Record<string, unknown>>;
  /** Stores (replaces) a project's override and notifies every replica (including this one). */
  put(project: string, override: unknown): Promise<void>;
  /** Removes a project's override (back to the config file's policy) and notifies. */
  remove(project: string): Promise<void>;
  /**
   * Called with the project name on every change by any replica, or with "*" when everything must be reloaded
   * (e.g. after a reconnect, since pub/sub messages may have been missed). Returns an unsubscribe function.
   */
  subscribe(listener: (project: string) => void): () => void;
  close(): Promise<void>;
}

/** Sent to listeners when every override must be reloaded. */
export const RELOAD_ALL = "*";

/**
 * In-process store. Values are kept as JSON text, so callers get copies and a value that cannot be stored in
 * Redis fails here too. Listeners are called synchronously, before put/remove resolve.
 */
export function createMemoryPolicyStore(opts: { logger?: Logger } = {}): PolicyStore {
  const overrides = new Map<string, string>();
  const listeners = createListeners(opts.logger);
  return {
    async load() {
      return Object.fromEntries(
        [...overrides].map(([project, json]) => [project, JSON.parse(json) as unknown]),
      );
    },
    async put(project, override) {
      overrides.set(checkProject(project), toJson(override));
      listeners.emit(project);
    },
    async remove(project) {
      overrides.delete(checkProject(project));
      listeners.emit(project);
    },
    subscribe: listeners.add,
    async close() {
      listeners.clear();
    },
  };
}

/**
 * What the Redis store needs of a connection; `RedisConnection` from src/cache/redis-connection.ts
 * (createRedisConnection) provides it. Declared here so that policy/ does not depend on cache/.
 */
export interface PolicyStoreConnection {
  readonly client: Redis;
  /** Calls `listener` on every (re)connect; returns an unsubscribe function. */
  onReady(listener: () => void): () => void;
  isReady(): boolean;
}

/**
 * Seals and checks what the store keeps in Redis; `RedisEntryMac` from src/cache/redis-entry-mac.ts
 * (createRedisEntryMac) provides it. `open` counts and logs what it rejects.
 */
export interface PolicyEntryMac {
  seal(kind: string, context: readonly string[], payload: string): string;
  open(kind: string, context: readonly string[], stored: string): string | undefined;
}

/** The MAC kind of runtime policy overrides. */
export const POLICY_ENTRY_KIND = "policy";

export interface RedisPolicyStoreOptions {
  /** Commands (HGETALL, HSET/HDEL + PUBLISH). */
  redis: PolicyStoreConnection;
  /** A second connection, used only for SUBSCRIBE (a subscribed connection cannot run other commands in RESP2). */
  subscriber: PolicyStoreConnection;
  /** Seals every stored override and checks it on load (the HMAC key shared by the replicas). */
  mac: PolicyEntryMac;
  /** Default "pullgate:v1:". */
  keyPrefix?: string;
  logger: Logger;
}

/**
 * Redis store.
 *  - `${prefix}policy`: hash, field = project, value = the override as JSON, sealed with the replicas' HMAC
 *    (kind "policy", bound to the hash's key name and the field). load() leaves out a value that is not an
 *    authentic seal for its field (the MAC counts and logs it): that project runs on the config file's policy.
 *    Someone who can write Redis can therefore remove an override, or put back one that pullgate stored
 *    earlier for the same project, but not write one of their own or move one to another project.
 *  - `${prefix}policy-changed`: channel; after each write (in the same MULTI) a message
 *    `{"project":…,"origin":…}` is published (not authenticated: all it does is make replicas reload). This
 *    replica's listeners are called directly once the write succeeded (before put/remove resolve, so the admin
 *    API reads its own write); its own messages coming back over pub/sub are ignored (origin), so every change
 *    reaches each listener once.
 *  - On every (re)connect of the subscriber, once SUBSCRIBE is confirmed, listeners get "*": messages published
 *    while it was disconnected are lost.
 *  - put/remove/load reject when Redis cannot be reached (the admin API answers 503): a write is never
 *    silently dropped.
 * close() unsubscribes but does not close the connections: whoever created them does.
 */
export function createRedisPolicyStore(opts: RedisPolicyStoreOptions): PolicyStore {
  const { redis, subscriber, logger, mac } = opts;
  const prefix = opts.keyPrefix ?? "pullgate:v1:";
  const hashKey = `${prefix}policy`;
  const channel = `${prefix}policy-changed`;
  const origin = randomUUID();
  const listeners = createListeners(logger);
  let closed = false;

  const onMessage = (from: string, message: string): void => {
    if (from !== channel || closed) return;
    const change = parseChangeMessage(message);
    if (!change) {
      logger.log("warn", "policy_change_message_invalid", {});
      listeners.emit(RELOAD_ALL);
      return;
    }
    if (change.origin === origin) return;
    listeners.emit(change.project);
  };
  subscriber.client.on("message", onMessage);

  const subscribeChannel = async (): Promise<void> => {
    if (closed) return;
    try {
      // Idempotent: ioredis also re-subscribes on reconnect; subscribing twice changes nothing server-side.
      await subscriber.client.subscribe(channel);
    } catch (err) {
      logger.log("warn", "policy_subscribe_failed", { code: (err as { code?: unknown }).code });
      // Try again through a reconnect (the next "ready" calls us again).
      if (!closed && subscriber.isReady()) subscriber.client.disconnect(true);
      return;
    }
    if (!closed) listeners.emit(RELOAD_ALL);
  };
  const offReady = subscriber.onReady(() => void subscribeChannel());
  if (subscriber.isReady()) void subscribeChannel();

  const write = async (project: string, change: (m: ChainableCommander) => void): Promise<void> => {
    if (closed) throw new Error("policy store is closed");
    const multi = redis.client.multi();
    change(multi);
    multi.publish(channel, JSON.stringify({ project, origin }));
    const results = await multi.exec();
    if (!results) throw new Error("policy store: MULTI was aborted");
    for (const [err] of results) if (err) throw err;
    listeners.emit(project);
  };

  return {
    async load() {
      const all = await redis.client.hgetall(hashKey);
      const out: Record<string, unknown> = {};
      for (const [project, stored] of Object.entries(all)) {
        const json = mac.open(POLICY_ENTRY_KIND, [hashKey, project], stored);
        if (json === undefined) continue;
        try {
          out[project] = JSON.parse(json) as unknown;
        } catch {
          logger.log("warn", "policy_override_invalid", { project });
        }
      }
      return out;
    },
    async put(project, override) {
      const sealed = mac.seal(POLICY_ENTRY_KIND, [hashKey, checkProject(project)], toJson(override));
      await write(project, (m) => m.hset(hashKey, project, sealed));
    },
    async remove(project) {
      await write(checkProject(project), (m) => m.hdel(hashKey, project));
    },
    subscribe: listeners.add,
    async close() {
      if (closed) return;
      closed = true;
      offReady();
      listeners.clear();
      subscriber.client.off("message", onMessage);
      if (subscriber.isReady()) {
        try {
          await subscriber.client.unsubscribe(channel);
        } catch {
          // the connection's creator closes it anyway
        }
      }
    },
  };
}

function parseChangeMessage(message: string): { project: string; origin: string } | undefined {
  try {
    const value = JSON.parse(message) as unknown;
    if (typeof value !== "object" || value === null) return undefined;
    const { project, origin } = value as Record<string, unknown>;
    if (typeof project !== "string" || typeof origin !== "string") return undefined;
    return { project, origin };
  } catch {
    return undefined;
  }
}

function checkProject(project: string): string {
  if (typeof project !== "string" || project.length === 0 || project === RELOAD_ALL) {
    throw new TypeError(`invalid project name: ${JSON.stringify(project)}`);
  }
  return project;
}

function toJson(override: unknown): string {
  const json = JSON.stringify(override);
  if (json === undefined) throw new TypeError("a policy override must be JSON-serializable");
  return json;
}

function createListeners(logger: Logger | undefined) {
  const listeners = new Set<(project: string) => void>();
  return {
    add(listener: (project: string) => void): () => void {
      // A wrapper, so that subscribing the same function twice gives two independent subscriptions.
      const entry = (project: string): void => listener(project);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    emit(project: string): void {
      for (const listener of [...listeners]) {
        try {
          listener(project);
        } catch (err) {
          // A listener bug must not break a write or the subscriber connection.
          logger?.log("error", "policy_listener_failed", { project, error: (err as Error)?.message });
        }
      }
    },
    clear(): void {
      listeners.clear();
    },
  };
}
