import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { MockAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApps, createDeps, type Deps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";

const TOKEN = "admin-token-0123456789";
const ISSUER = "https://issuer.test";
const AUDIENCE = "pullgate-admin";
const KID = "admin-key-1";

let dir: string;
let jwksPath: string;
let signingKey: CryptoKey;
let otherKey: CryptoKey;
const opened: Deps[] = [];

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "pullgate-admin-auth-"));
  const pair = await generateKeyPair("ES256");
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair("ES256")).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: KID, alg: "ES256", use: "sig" };
  jwksPath = join(dir, "jwks.json");
  writeFileSync(jwksPath, JSON.stringify({ keys: [jwk] }));
});

afterAll(async () => {
  await Promise.all(opened.map((d) => d.close()));
  rmSync(dir, { recursive: true, force: true });
});

async function adminApp(admin: Record<string, unknown>) {
  const agent = new MockAgent();
  agent.disableNetConnect();
  const logger = createMemoryLogger();
  const config = parseConfig(JSON.stringify({ upstreams: [{ name: "up", url: "http://up.test" }], admin }), {
    source: "test",
    baseDir: dir,
    env: {},
  });
  const deps = await createDeps(config, { logger, dispatcherFor: () => agent });
  opened.push(deps);
  return { app: createApps(deps).admin, logger };
}

const jwtConfig = (extra: Record<string, unknown> = {}) => ({
  jwt: { jwksPath, issuer: ISSUER, audience: AUDIENCE, ...extra },
});

function jwt(
  opts: {
    sub?: string;
    iss?: string;
    aud?: string;
    /** Default now + 300. */
    exp?: number | string;
    /** Default now − 60; null: no iat claim. */
    iat?: number | null;
    nbf?: number | string;
    key?: CryptoKey;
    kid?: string;
    /** Claims to add; default `pullgate_roles: ["write"]`. */
    claims?: Record<string, unknown>;
  } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const builder = new SignJWT(opts.claims ?? { pullgate_roles: ["write"] })
    .setProtectedHeader({ alg: "ES256", kid: opts.kid ?? KID })
    .setSubject(opts.sub ?? "alice")
    .setIssuer(opts.iss ?? ISSUER)
    .setAudience(opts.aud ?? AUDIENCE)
    .setExpirationTime(opts.exp ?? now + 300);
  if (opts.iat !== null) builder.setIssuedAt(opts.iat ?? now - 60);
  if (opts.nbf !== undefined) builder.setNotBefore(opts.nbf);
  return builder.sign(opts.key ?? signingKey);
}

const bearer = (token: string) => ({ headers: { authorization: `Bearer ${token}` } });

async function code(res: Response): Promise<string> {
  return ((await res.json()) as { errors: Array<{ code: string }> }).errors[0]?.code ?? "";
}

describe("no admin credentials configured", () => {
  it("answers 401 on every /admin/v1 route, whatever is presented; health endpoints still answer", async () => {
    const { app } = await adminApp({});
    for (const init of [{}, bearer("anything"), bearer(TOKEN)]) {
      const res = await app.request("/admin/v1/projects", init);
      expect(res.status).toBe(401);
      expect(await code(res)).toBe("UNAUTHORIZED");
    }
    const put = await app.request("/admin/v1/projects/team/policy", {
      method: "PUT",
      body: JSON.stringify({ mode: "off" }),
    });
    expect(put.status).toBe(401);
    expect((await app.request("/healthz")).status).toBe(200);
  });
});

describe("admin token", () => {
  it("accepts the configured token and refuses anything else with 401 and a Bearer challenge", async () => {
    const { app } = await adminApp({ token: TOKEN });
    expect((await app.request("/admin/v1/projects", bearer(TOKEN))).status).toBe(200);
    expect(
      (await app.request("/admin/v1/projects", { headers: { authorization: `bearer ${TOKEN}` } })).status,
    ).toBe(200);
    for (const authorization of [
      undefined,
      "Bearer wrong-token",
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Basic ${Buffer.from(`admin:${TOKEN}`).toString("base64")}`,
      TOKEN,
      `Bearer ${TOKEN} extra`,
    ]) {
      const res = await app.request(
        "/admin/v1/projects",
        authorization ? { headers: { authorization } } : {},
      );
      expect(res.status, String(authorization)).toBe(401);
      expect(res.headers.get("www-authenticate")).toMatch(/^Bearer /);
      expect(await code(res)).toBe("UNAUTHORIZED");
    }
  });

  it("refuses a wrong token before touching anything", async () => {
    const { app, logger } = await adminApp({ token: TOKEN });
    const res = await app.request("/admin/v1/projects/team/policy", {
      method: "PUT",
      body: JSON.stringify({ mode: "off" }),
      headers: { authorization: "Bearer nope" },
    });
    expect(res.status).toBe(401);
    const view = await app.request("/admin/v1/projects/team/policy", bearer(TOKEN));
    expect(((await view.json()) as { source: string }).source).toBe("defaults");
    expect(logger.records.filter((r) => r.kind === "admin-change")).toEqual([]);
  });

  it("records the token actor as 'token', never the token", async () => {
    const { app, logger } = await adminApp({ token: TOKEN });
    const res = await app.request("/admin/v1/projects/team/policy", {
      method: "PUT",
      body: JSON.stringify({ mode: "audit" }),
      ...bearer(TOKEN),
    });
    expect(res.status).toBe(200);
    expect(logger.records.find((r) => r.kind === "admin-change")).toMatchObject({
      actor: "token",
      role: "write",
    });
    expect(JSON.stringify(logger.records)).not.toContain(TOKEN);
  });
});

describe("admin JWT", () => {
  it("accepts a valid JWT and audits the actor as jwt:<sub>", async () => {
    const { app, logger } = await adminApp(jwtConfig());
    const token = await jwt({ sub: "alice@example.test" });
    expect((await app.request("/admin/v1/projects", bearer(token))).status).toBe(200);
    const res = await app.request("/admin/v1/projects/team/policy", {
      method: "PUT",
      body: JSON.stringify({ mode: "enforce" }),
      ...bearer(token),
    });
    expect(res.status).toBe(200);
    expect(logger.records.filter((r) => r.kind === "admin-change")).toEqual([
      expect.objectContaining({
        actor: "jwt:alice@example.test",
        role: "write",
        action: "policy.update",
        target: "team",
      }),
    ]);
    expect(JSON.stringify(logger.records)).not.toContain(token);
  });

  it.each([
    ["expired", () => jwt({ exp: Math.floor(Date.now() / 1000) - 120 })],
    ["not yet valid", () => jwt({ nbf: Math.floor(Date.now() / 1000) + 3600 })],
    ["for another audience", () => jwt({ aud: "someone-else" })],
    ["from another issuer", () => jwt({ iss: "https://evil.test" })],
    ["signed by another key (same kid)", () => jwt({ key: otherKey })],
    ["signed by a key not in the JWKS", () => jwt({ key: otherKey, kid: "unknown" })],
    [
      "without an expiry (valid forever)",
      () =>
        new SignJWT({})
          .setProtectedHeader({ alg: "ES256", kid: KID })
          .setSubject("alice")
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .sign(signingKey),
    ],
    [
      "without a subject (no actor to audit)",
      () =>
        new SignJWT({})
          .setProtectedHeader({ alg: "ES256", kid: KID })
          .setIssuer(ISSUER)
          .setAudience(AUDIENCE)
          .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
          .sign(signingKey),
    ],
    [
      "tampered (payload swapped)",
      async () => {
        const [h, , s] = (await jwt()).split(".");
        const p = Buffer.from(JSON.stringify({ sub: "mallory", iss: ISSUER, aud: AUDIENCE })).toString(
          "base64url",
        );
        return `${h}.${p}.${s}`;
      },
    ],
    [
      "unsigned (alg none)",
      async () => {
        const h = Buffer.from(JSON.stringify({ alg: "none" })).toString("base64url");
        const p = Buffer.from(
          JSON.stringify({
            sub: "mallory",
            iss: ISSUER,
            aud: AUDIENCE,
            exp: Math.floor(Date.now() / 1000) + 300,
          }),
        ).toString("base64url");
        return `${h}.${p}.`;
      },
    ],
  ])("refuses a JWT %s with 401", async (_, make) => {
    const { app } = await adminApp({ ...jwtConfig(), token: TOKEN });
    const res = await app.request("/admin/v1/projects", bearer(await make()));
    expect(res.status).toBe(401);
    expect(await code(res)).toBe("UNAUTHORIZED");
  });

  it("accepts both the token and JWTs when both are configured", async () => {
    const { app } = await adminApp({ ...jwtConfig(), token: TOKEN });
    expect((await app.request("/admin/v1/projects", bearer(TOKEN))).status).toBe(200);
    expect((await app.request("/admin/v1/projects", bearer(await jwt()))).status).toBe(200);
  });

  it("with only a JWT configured, a non-JWT bearer is refused", async () => {
    const { app } = await adminApp(jwtConfig());
    expect((await app.request("/admin/v1/projects", bearer(TOKEN))).status).toBe(401);
  });
});

describe("admin JWT roles", () => {
  const D = `sha256:${"d".repeat(64)}`;
  type Call = { name: string; path: string; method?: string; body?: string };
  const calls: Record<string, Call> = {
    list: { name: "GET projects", path: "/admin/v1/projects" },
    view: { name: "GET team policy", path: "/admin/v1/projects/team/policy" },
    // A body without a reference: 400 once authorized, so no upstream is needed.
    verify: { name: "POST verify", path: "/admin/v1/verify", method: "POST", body: "{}" },
    putTeam: {
      name: "PUT team",
      path: "/admin/v1/projects/team/policy",
      method: "PUT",
      body: JSON.stringify({ mode: "audit" }),
    },
    deleteTeam: { name: "DELETE team", path: "/admin/v1/projects/team/policy", method: "DELETE" },
    putOther: {
      name: "PUT other",
      path: "/admin/v1/projects/other/policy",
      method: "PUT",
      body: JSON.stringify({ mode: "off" }),
    },
    deleteOther: { name: "DELETE other", path: "/admin/v1/projects/other/policy", method: "DELETE" },
    deleteCache: { name: "DELETE cache", path: `/admin/v1/cache/${D}`, method: "DELETE" },
  };
  const authorizedStatus: Record<keyof typeof calls, number> = {
    list: 200,
    view: 200,
    verify: 400,
    putTeam: 200,
    deleteTeam: 200,
    putOther: 200,
    deleteOther: 200,
    deleteCache: 200,
  };

  async function statuses(roles: unknown, claim = "pullgate_roles", extra: Record<string, unknown> = {}) {
    const { app, logger } = await adminApp(jwtConfig(extra));
    const token = await jwt({ claims: { [claim]: roles } });
    const out: Record<string, number> = {};
    for (const [key, call] of Object.entries(calls)) {
      const res = await app.request(call.path, {
        method: call.method ?? "GET",
        ...(call.body !== undefined ? { body: call.body } : {}),
        ...bearer(token),
      });
      out[key] = res.status;
      if (res.status === 403) {
        expect(await code(res), call.name).toBe("DENIED");
      }
    }
    return { out, logger };
  }

  /** What each call answers when only `allowed` are authorized: their normal status, 403 for the rest. */
  const expected = (...allowed: Array<keyof typeof calls>) =>
    Object.fromEntries(Object.keys(calls).map((k) => [k, allowed.includes(k) ? authorizedStatus[k] : 403]));

  it("read: the GET endpoints and the dry run; no change", async () => {
    const { out, logger } = await statuses(["read"]);
    expect(out).toEqual(expected("list", "view", "verify"));
    expect(logger.records.filter((r) => r.kind === "admin-change")).toEqual([]);
  });

  it("write:<project>: PUT and DELETE of that project's policy only; audited with that role", async () => {
    const { out, logger } = await statuses(["write:team"]);
    expect(out).toEqual(expected("putTeam", "deleteTeam"));
    expect(logger.records.filter((r) => r.kind === "admin-change")).toEqual([
      expect.objectContaining({
        actor: "jwt:alice",
        role: "write:team",
        action: "policy.update",
        target: "team",
      }),
      expect.objectContaining({
        actor: "jwt:alice",
        role: "write:team",
        action: "policy.reset",
        target: "team",
      }),
    ]);
  });

  it("read plus write:<project> combine", async () => {
    const { out } = await statuses(["read", "write:team"]);
    expect(out).toEqual(expected("list", "view", "verify", "putTeam", "deleteTeam"));
  });

  it("write: everything, cache deletion included; audited with the role", async () => {
    const { out, logger } = await statuses(["write"]);
    expect(out).toEqual(expected(...(Object.keys(calls) as Array<keyof typeof calls>)));
    const changes = logger.records.filter((r) => r.kind === "admin-change");
    expect(changes.map((r) => [r.action, r.role])).toEqual([
      ["policy.update", "write"],
      ["policy.reset", "write"],
      ["policy.update", "write"],
      ["policy.reset", "write"],
      ["cache.delete", "write"],
    ]);
  });

  it("takes the roles from a space-separated string and from a configured claim; ignores what it does not know", async () => {
    expect((await statuses("read write:team")).out).toEqual(
      expected("list", "view", "verify", "putTeam", "deleteTeam"),
    );
    expect((await statuses(["admin", "write:Team", "write:", "READ", "read"])).out).toEqual(
      expected("list", "view", "verify"),
    );
    expect((await statuses(["write:team"], "groups", { rolesClaim: "groups" })).out).toEqual(
      expected("putTeam", "deleteTeam"),
    );
  });

  it.each([
    ["no roles claim", undefined],
    ["an empty list", []],
    ["only unknown roles", ["admin", "root", "write:", "write:UPPER", 42]],
    ["a claim that is not a list or a string", { read: true }],
  ])("a token with %s is refused with 403 DENIED everywhere", async (_, roles) => {
    const { out, logger } = await statuses(roles);
    expect(Object.values(out).every((s) => s === 403)).toBe(true);
    expect(logger.records.filter((r) => r.kind === "admin-change")).toEqual([]);
  });

  it("roles in another claim than the configured one do not count", async () => {
    const { out } = await statuses(["write"], "roles");
    expect(Object.values(out).every((s) => s === 403)).toBe(true);
  });

  it("the static admin token stays full admin", async () => {
    const { app } = await adminApp({ ...jwtConfig(), token: TOKEN });
    expect((await app.request(`/admin/v1/cache/${D}`, { method: "DELETE", ...bearer(TOKEN) })).status).toBe(
      200,
    );
  });
});

describe("admin JWT lifetime", () => {
  const now = () => Math.floor(Date.now() / 1000);
  const status = async (token: Promise<string>, extra: Record<string, unknown> = {}) => {
    const { app } = await adminApp(jwtConfig(extra));
    return (await app.request("/admin/v1/projects", bearer(await token))).status;
  };

  it("accepts exp − iat up to maxLifetimeSeconds (default 3600) and refuses longer ones with 401", async () => {
    const iat = now() - 10;
    expect(await status(jwt({ iat, exp: iat + 3600 }))).toBe(200);
    expect(await status(jwt({ iat, exp: iat + 3601 }))).toBe(401);
    expect(await status(jwt({ iat, exp: iat + 30 * 86_400 }))).toBe(401);
    expect(await status(jwt({ iat, exp: iat + 600 }), { maxLifetimeSeconds: 600 })).toBe(200);
    expect(await status(jwt({ iat, exp: iat + 601 }), { maxLifetimeSeconds: 600 })).toBe(401);
  });

  it("requires iat, and refuses an iat in the future", async () => {
    expect(await status(jwt({ iat: null }))).toBe(401);
    // Issued "later" to make a long-lived token look short.
    const future = now() + 86_400;
    expect(await status(jwt({ iat: future, exp: future + 600 }))).toBe(401);
  });
});
