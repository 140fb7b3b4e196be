import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { Secret } from "../config/secret.ts";
import { createMemoryLogger, createPullgateMetrics } from "../telemetry/index.ts";
import { createRedisEntryMac, RedisEntryLogEvents } from "./entry-mac.ts";

const KEY = randomBytes(32).toString("hex");

function create(opts: { key?: string; now?: () => number } = {}) {
  const logger = createMemoryLogger();
  const metrics = createPullgateMetrics();
  const mac = createRedisEntryMac({
    key: new Secret(opts.key ?? KEY),
    logger,
    metrics,
    ...(opts.now ? { now: opts.now } : {}),
  });
  const rejected = (kind: string) => metrics.redisRejectedEntries.value({ kind });
  return { mac, logger, rejected };
}

describe("redis entry MAC", () => {
  it("opens what it sealed, and what another replica with the same key sealed", () => {
    const { mac } = create();
    const { mac: replica, rejected: replicaRejected } = create();
    const sealed = mac.seal("verdict", ["pullgate:v1:verdict:fp:sha256:1"], '123.{"outcome":"allow"}');
    expect(sealed).toMatch(/^v1\.[A-Za-z0-9_-]{43}\.123\.\{"outcome":"allow"\}$/);
    expect(replica.open("verdict", ["pullgate:v1:verdict:fp:sha256:1"], sealed)).toBe(
      '123.{"outcome":"allow"}',
    );
    expect(replica.open("policy", ["h", "p"], replica.seal("policy", ["h", "p"], ""))).toBe("");
    expect(replicaRejected("verdict") + replicaRejected("policy")).toBe(0);
  });

  it("rejects a changed payload, another key name, another kind, another HMAC key, and unsealed values", () => {
    const { mac, logger, rejected } = create();
    const { mac: stranger } = create({ key: randomBytes(32).toString("hex") });
    const context = ["pullgate:v1:verdict:fp:sha256:1"];
    const sealed = mac.seal("verdict", context, '123.{"outcome":"deny"}');
    const attempts: Array<[string, readonly string[], string]> = [
      ["verdict", context, sealed.replace('"deny"', '"allow"')],
      ["verdict", context, sealed.replace(".123.", ".999.")],
      ["verdict", ["pullgate:v1:verdict:fp:sha256:2"], sealed],
      ["policy", context, sealed],
      ["verdict", context, stranger.seal("verdict", context, '123.{"outcome":"deny"}')],
      ["verdict", context, '123.{"outcome":"allow"}'],
      ["verdict", context, ""],
      ["verdict", context, "v1."],
      ["verdict", context, `v1.${"A".repeat(43)}.123.{}`],
      ["verdict", context, sealed.slice(0, 20)],
      [
        "verdict",
        context,
        `${sealed.slice(0, 3)}${sealed.slice(3, 46).replace(/^./, (c) => (c === "A" ? "B" : "A"))}${sealed.slice(46)}`,
      ],
    ];
    for (const [kind, ctx, stored] of attempts) expect(mac.open(kind, ctx, stored), stored).toBeUndefined();
    expect({ verdict: rejected("verdict"), policy: rejected("policy") }).toEqual({
      verdict: attempts.length - 1,
      policy: 1,
    });
    // The key and the MACs never reach the log.
    const logged = JSON.stringify(logger.records);
    expect(logged).not.toContain(KEY);
    expect(logged).not.toContain(sealed.slice(3, 46));
  });

  it("binds the context fields one by one: moving a boundary between key name and field changes the MAC", () => {
    const { mac } = create();
    const sealed = mac.seal("policy", ["pullgate:v1:policy", "team"], "{}");
    expect(mac.open("policy", ["pullgate:v1:policyt", "eam"], sealed)).toBeUndefined();
    expect(mac.open("policy", ["pullgate:v1:policyteam"], sealed)).toBeUndefined();
    expect(mac.open("policy", ["pullgate:v1:policy", "team"], sealed)).toBe("{}");
  });

  it("logs rejections at warn, at most once per interval and kind, with the count since the previous line", () => {
    let t = 1_000_000;
    const { mac, logger, rejected } = create({ now: () => t });
    const lines = () => logger.records.filter((r) => r.event === RedisEntryLogEvents.rejected);
    for (let i = 0; i < 5; i++) mac.open("verdict", ["k"], "forged");
    mac.open("policy", ["h", "p"], "v1.forged");
    expect(lines()).toEqual([
      {
        level: "warn",
        event: RedisEntryLogEvents.rejected,
        kind: "verdict",
        reason: "unsealed",
        rejected: 1,
      },
      { level: "warn", event: RedisEntryLogEvents.rejected, kind: "policy", reason: "unsealed", rejected: 1 },
    ]);
    t += 10_000;
    mac.open("verdict", ["k"], mac.seal("verdict", ["other"], "x"));
    expect(lines().at(-1)).toEqual({
      level: "warn",
      event: RedisEntryLogEvents.rejected,
      kind: "verdict",
      reason: "bad_mac",
      rejected: 5,
    });
    expect(rejected("verdict")).toBe(6);
  });

  it("refuses a key shorter than 32 bytes", () => {
    expect(() => create({ key: "x".repeat(31) })).toThrow(/at least 32 bytes/);
    expect(() => create({ key: "x".repeat(32) })).not.toThrow();
  });
});
