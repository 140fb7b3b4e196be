import { setTimeout as sleep } from "node:timers/promises";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { Secret } from "../src/config/secret.ts";
import { freePort } from "../src/local/index.ts";
import { createRedisConnection, type RedisConnection, RedisLogEvents } from "../src/redis/connection.ts";
import { createMemoryLogger } from "../src/telemetry/logger.ts";
import { type RedisServer, startRedis } from "./support/redis.ts";

const PASSWORD = "s3cret-Pa55word";

describe("redis connection", () => {
  let server: RedisServer;
  const connections: RedisConnection[] = [];
  const connect = (
    url: string,
    logger = createMemoryLogger(),
    extra: { socketTimeoutMs?: number; failureLogIntervalMs?: number } = {},
  ) => {
    const connection = createRedisConnection(new Secret(url), { logger, name: "test", ...extra });
    connections.push(connection);
    return { connection, logger };
  };
  const count = (logger: ReturnType<typeof createMemoryLogger>, event: string): number =>
    logger.records.filter((r) => r.event === event).length;

  beforeAll(async () => {
    server = await startRedis({ password: PASSWORD });
  });

  afterAll(async () => {
    await Promise.all(connections.map((c) => c.close()));
    await server?.stop();
  });

  test("connects with the password from the URL and logs one 'up' line without the URL", async () => {
    const { connection, logger } = connect(server.url);
    expect(await connection.whenReady(10_000)).toBe(true);
    expect(connection.isReady()).toBe(true);
    expect(await connection.client.ping()).toBe("PONG");
    expect(logger.records).toEqual([{ level: "info", event: RedisLogEvents.up, connection: "test" }]);
  });

  test("a wrong password: one 'down' line for all the retries, the password never logged", async () => {
    const url = server.url.replace(encodeURIComponent(PASSWORD), "wrong-Pa55word");
    const { connection, logger } = connect(url);
    expect(await connection.whenReady(600)).toBe(false);
    expect(count(logger, RedisLogEvents.down)).toBe(1);
    expect(logger.records[0]).toMatchObject({ event: RedisLogEvents.down, errorName: "ReplyError" });
    expect(JSON.stringify(logger.records)).not.toContain("wrong-Pa55word");
  });

  test("nothing listening: commands reject at once (no offline queue), one 'down' line, the process lives on", async () => {
    const port = await freePort();
    const { connection, logger } = connect(`redis://user:${PASSWORD}@127.0.0.1:${port}`);
    expect(await connection.whenReady(500)).toBe(false);
    await expect(connection.client.get("k")).rejects.toThrow(/enableOfflineQueue/);
    connection.reportFailure("verdict_get", new Error("x"));
    expect(connection.stats()).toEqual({ ready: false, failures: 1, disconnects: 0 });
    expect(count(logger, RedisLogEvents.down)).toBe(1);
    expect(count(logger, RedisLogEvents.commandFailed)).toBe(0);
    expect(JSON.stringify(logger.records)).not.toContain(PASSWORD);
  });

  test("a hung Redis: commands fail after the command timeout, the socket is torn down, and it recovers", async () => {
    const { connection, logger } = connect(server.url, createMemoryLogger(), { socketTimeoutMs: 400 });
    expect(await connection.whenReady(10_000)).toBe(true);
    server.pause();
    try {
      await expect(connection.client.get("k")).rejects.toThrow(/timed out/);
      // The socket timeout declares it down: later commands are not even sent.
      await expect.poll(() => connection.isReady(), { timeout: 5_000 }).toBe(false);
      await expect(connection.client.get("k")).rejects.toThrow();
    } finally {
      server.resume();
    }
    expect(await connection.whenReady(10_000)).toBe(true);
    expect(count(logger, RedisLogEvents.down)).toBe(1);
    expect(count(logger, RedisLogEvents.up)).toBe(2);
    expect(connection.stats().disconnects).toBe(1);
  });

  test("failures while the connection claims to be up are logged at most once per interval", async () => {
    const { connection, logger } = connect(server.url, createMemoryLogger(), {
      failureLogIntervalMs: 60_000,
    });
    expect(await connection.whenReady(10_000)).toBe(true);
    for (let i = 0; i < 5; i++) connection.reportFailure("verdict_set", new Error("OOM command not allowed"));
    expect(connection.stats().failures).toBe(5);
    const lines = logger.records.filter((r) => r.event === RedisLogEvents.commandFailed);
    expect(lines).toEqual([
      expect.objectContaining({ operation: "verdict_set", failures: 1, error: "OOM command not allowed" }),
    ]);
  });

  test("close() is idempotent, logs nothing and stops reconnecting", async () => {
    const { connection, logger } = connect(server.url);
    expect(await connection.whenReady(10_000)).toBe(true);
    await Promise.all([connection.close(), connection.close()]);
    await sleep(100);
    expect(connection.isReady()).toBe(false);
    expect(await connection.whenReady(50)).toBe(false);
    expect(connection.client.status).toBe("end");
    expect(count(logger, RedisLogEvents.down)).toBe(0);
    await expect(connection.client.get("k")).rejects.toThrow();
  });

  test("a URL that is not redis:// or rediss:// is refused without echoing it", () => {
    expect(() =>
      createRedisConnection(new Secret(`http://:${PASSWORD}@example`), {
        logger: createMemoryLogger(),
        name: "bad",
      }),
    ).toThrow(/redis:\/\//);
    try {
      createRedisConnection(new Secret(`http://:${PASSWORD}@example`), {
        logger: createMemoryLogger(),
        name: "bad",
      });
    } catch (err) {
      expect((err as Error).message).not.toContain(PASSWORD);
    }
  });
});
