import { randomUUID } from "node:crypto";
import type { ChainableCommander } from "ioredis";
import { checkProject, createListeners, type PolicyStore, RELOAD_ALL, toJson } from "../policy/index.ts";
import type { Logger } from "../telemetry/index.ts";
import { errorCause } from "../telemetry/logger.ts";
import type { RedisConnection } from "./connection.ts";
import type { RedisEntryMac } from "./entry-mac.ts";

/** The MAC kind of runtime policy overrides. */
export const POLICY_ENTRY_KIND = "policy";

export interface RedisPolicyStoreOptions {
  /** Commands (HGETALL, HSET/HDEL + PUBLISH). */
  redis: RedisConnection;
  /** A second connection, used only for SUBSCRIBE (a subscribed connection cannot run other commands in RESP2). */
  subscriber: RedisConnection;
  /** Seals every stored override and checks it on load (the HMAC key shared by the replicas). */
  mac: RedisEntryMac;
  /** Default "pullgate:v1:". */
  keyPrefix?: string;
  logger: Logger;
  /**
   * How often every runtime policy is read again while Redis is up (default 30 s): pub/sub delivers at most
   * once, and a Cluster's subscriber connection moved to another node by ioredis says nothing, so a change
   * published in such a gap is picked up by this reload instead of never.
   */
  reconcileMs?: number;
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
 *    while it was disconnected are lost. Every `reconcileMs` while Redis is up, listeners get "*" too: a change
 *    lost in a gap the subscriber did not report (ioredis re-subscribing a Cluster's subscriber on another node
 *    emits nothing) is applied within that period.
 *  - put/remove/load reject when Redis cannot be reached (the admin API answers 503): a write is never
 *    silently dropped.
 * Redis Cluster: one key (the hash), and MULTI holds it and a PUBLISH (no key), so no CROSSSLOT; the Cluster's
 * subscriber connection hears a PUBLISH made on any node. Sentinel: both connections follow the master, and the
 * subscriber's reconnect to a new master reloads everything ("*").
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
      logger.log("warn", "policy change message invalid", {});
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
      logger.log("warn", "policy subscribe failed", { cause: errorCause(err) });
      // Try again through a reconnect (the next "ready" calls us again).
      if (!closed && subscriber.isReady()) subscriber.client.disconnect(true);
      return;
    }
    if (!closed) listeners.emit(RELOAD_ALL);
  };
  const offReady = subscriber.onReady(() => void subscribeChannel());
  if (subscriber.isReady()) void subscribeChannel();
  const reconcile = setInterval(() => {
    if (!closed && redis.isReady()) listeners.emit(RELOAD_ALL);
  }, opts.reconcileMs ?? 30_000);
  reconcile.unref();

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
          logger.log("warn", "policy override invalid", { project });
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
      clearInterval(reconcile);
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
