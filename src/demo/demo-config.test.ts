import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../config/index.ts";
import { DEMO_REDIS_HMAC_KEY_ENV, renderDemoConfig } from "./demo-config.ts";

const publicKeyPem = generateKeyPairSync("ec", { namedCurve: "P-256" }).publicKey.export({
  type: "spki",
  format: "pem",
}) as string;

const input = {
  proxyPort: 41001,
  adminPort: 41002,
  registryUrl: "http://127.0.0.1:41000",
  redisUrl: "redis://127.0.0.1:41003",
  keyName: "demo",
  publicKeyPem,
};

describe("renderDemoConfig", () => {
  it("is a valid pullgate config on its own: project demo enforced with the inline key", () => {
    const hmacKey = "k".repeat(32);
    const config = parseConfig(renderDemoConfig(input), {
      source: "test",
      baseDir: "/nonexistent",
      env: { [DEMO_REDIS_HMAC_KEY_ENV]: hmacKey },
    });
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 41001 });
    expect(config.admin.listen).toEqual({ host: "127.0.0.1", port: 41002 });
    expect(config.redis?.url.reveal()).toBe("redis://127.0.0.1:41003");
    expect(config.redis?.hmacKey.reveal()).toBe(hmacKey);
    expect(config.upstreams.map((u) => [u.url, u.default])).toEqual([["http://127.0.0.1:41000", true]]);
    expect(config.projects.demo?.mode).toBe("enforce");
    expect(config.projects.demo?.keys.map((k) => k.name)).toEqual(["demo"]);
  });

  it("holds no admin token (pullgate gets it from PULLGATE_ADMIN_TOKEN) and no Redis when there is none", () => {
    const text = renderDemoConfig({ ...input, redisUrl: undefined });
    expect(text).not.toMatch(/^\s*token:/m);
    expect(text).not.toContain("redis");
    const config = parseConfig(text, { source: "t", baseDir: "/", env: { PULLGATE_ADMIN_TOKEN: "t0k3n" } });
    expect(config.redis).toBeUndefined();
    expect(config.admin.token?.reveal()).toBe("t0k3n");
  });
});
