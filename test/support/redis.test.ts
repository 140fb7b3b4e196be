import { Socket } from "node:net";
import { afterAll, describe, expect, test } from "vitest";
import { isPortFree } from "../../src/local/index.ts";
import { type RedisServer, startRedis } from "./redis.ts";

/** One RESP round trip over a raw socket: sends `lines` as inline commands, returns the raw reply text. */
function send(port: number, lines: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let reply = "";
    socket.setTimeout(2_000, () => {
      socket.destroy();
      reject(new Error("timeout"));
    });
    socket.once("error", reject);
    socket.on("data", (chunk) => {
      reply += chunk.toString("latin1");
      if (reply.split("\r\n").length > lines.length) {
        socket.destroy();
        resolve(reply);
      }
    });
    socket.connect({ host: "127.0.0.1", port }, () => socket.write(`${lines.join("\r\n")}\r\n`));
  });
}

describe("startRedis", () => {
  const servers: RedisServer[] = [];
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test("runs a loopback redis-server without persistence that can be halted and restarted on its port", async () => {
    const redis = await startRedis();
    servers.push(redis);
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    expect(await send(redis.port, ["SET k v", "GET k", "CONFIG GET save", "CONFIG GET appendonly"])).toBe(
      "+OK\r\n$1\r\nv\r\n*2\r\n$4\r\nsave\r\n$0\r\n\r\n*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n",
    );

    await redis.halt();
    expect(redis.isRunning()).toBe(false);
    expect(await isPortFree(redis.port)).toBe(true);

    await redis.restart();
    expect(redis.isRunning()).toBe(true);
    // No persistence: a restarted server is empty.
    expect(await send(redis.port, ["GET k"])).toBe("$-1\r\n");

    await redis.stop();
    await redis.stop();
    expect(await isPortFree(redis.port)).toBe(true);
  });

  test("requires the password when given one; the url carries it", async () => {
    const redis = await startRedis({ password: "p@ss word" });
    servers.push(redis);
    expect(redis.url).toBe(`redis://:p%40ss%20word@127.0.0.1:${redis.port}`);
    expect(await send(redis.port, ["GET k"])).toMatch(/^-NOAUTH/);
    expect(await send(redis.port, ['AUTH "p@ss word"', "PING"])).toBe("+OK\r\n+PONG\r\n");
  });
});
