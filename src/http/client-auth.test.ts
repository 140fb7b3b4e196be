import { createHash } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import bcrypt from "bcryptjs";
import { exportJWK, generateKeyPair, type JWTPayload, SignJWT } from "jose";
import { MockAgent } from "undici";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { createApps, createDeps, type DepsOverrides } from "../app.ts";
import { type Config, ConfigError, loadConfig, parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";
import { createConcurrencyLimit, QueueFullError } from "./concurrency-limit.ts";
import { allows } from "./pull-permission.ts";

const UP = "http://up.test:5000";
const OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json";
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, layers: [] }));
const digest = `sha256:${createHash("sha256").update(manifest).digest("hex")}`;
const ROBOT = `Basic ${Buffer.from("robot:robot-pw").toString("base64")}`;
const ISSUER = "https://kubernetes.default.svc";
const AUDIENCE = "pullgate";

const basic = (user: string, password: string) =>
  `Basic ${Buffer.from(`${user}:${password}`).toString("base64")}`;

let dir: string;
type PrivateKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
let signingKey: PrivateKey;
let otherKey: PrivateKey;
let rsaKey: PrivateKey;
const HS_SECRET = new TextEncoder().encode("a-shared-secret-that-is-long-enough-for-hs256!!");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "pg-client-auth-"));
  // bcryptjs writes $2b$; `htpasswd -B` writes $2y$ (the same algorithm): both kinds are in the file.
  const ci = bcrypt.hashSync("ci-pw", 4).replace(/^\$2b\$/, "$2y$");
  const dev = bcrypt.hashSync("dev-pw", 4);
  writeFileSync(join(dir, "htpasswd"), `# pullgate users\nci-bot:${ci}\n\ndev:${dev}\n`);
  const pair = await generateKeyPair("ES256");
  signingKey = pair.privateKey;
  otherKey = (await generateKeyPair("ES256")).privateKey;
  const jwk = { ...(await exportJWK(pair.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  // A symmetric key in the set: an HS256 token signed with it must still be refused (the allowed
  // algorithms are asymmetric only; jose 6 also refuses HS* from a key set).
  const oct = { kty: "oct", k: Buffer.from(HS_SECRET).toString("base64url"), kid: "hs" };
  const rsa = await generateKeyPair("PS256");
  rsaKey = rsa.privateKey;
  const rsaJwk = { ...(await exportJWK(rsa.publicKey)), kid: "r1", alg: "PS256" };
  writeFileSync(join(dir, "jwks.json"), JSON.stringify({ keys: [jwk, oct, rsaJwk] }));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const UPSTREAM = `
upstreams:
  - name: local
    url: "${UP}"
    credentials: { username: robot, password: robot-pw }
`;

function configText(clientAuth: string, extra = ""): string {
  return `${UPSTREAM}clientAuth:\n${clientAuth}\nprojects:\n  proj:\n    pull: ["ci-bot", "system:serviceaccount:prod:*"]\n${extra}`;
}

const HTPASSWD_AND_JWT = `  htpasswd: htpasswd
  jwt:
    jwksPath: jwks.json
    issuer: "${ISSUER}"
    audience: ${AUDIENCE}
    maxLifetimeSeconds: 3600`;

let agent = new MockAgent();
let agents: MockAgent[] = [];
afterEach(async () => {
  await Promise.all(agents.map((a) => a.close()));
  agents = [];
});

function newAgent(): MockAgent {
  agent = new MockAgent();
  agent.disableNetConnect();
  agents.push(agent);
  return agent;
}

async function setup(clientAuth = HTPASSWD_AND_JWT, overrides: DepsOverrides = {}) {
  const a = newAgent();
  const logger = createMemoryLogger();
  const config = parseConfig(configText(clientAuth), { source: "test", baseDir: dir, env: {} });
  const deps = await createDeps(config, { logger, dispatcherFor: () => a, ...overrides });
  return { app: createApps(deps).proxy, deps, logger };
}

/** The upstream answers a Basic challenge, then serves the manifest; records what pullgate sent. */
function upstreamManifest(path = "/v2/proj/app/manifests/v1") {
  const seen: Array<string | undefined> = [];
  const pool = agent.get(UP);
  pool
    .intercept({ path, method: "GET" })
    .reply((opts) => {
      const auth = (opts.headers as Record<string, string>).authorization;
      seen.push(auth);
      if (auth !== ROBOT)
        return {
          statusCode: 401,
          data: "",
          responseOptions: { headers: { "www-authenticate": 'Basic realm="up"' } },
        };
      return {
        statusCode: 200,
        data: manifest,
        responseOptions: {
          headers: {
            "content-type": OCI_MANIFEST,
            "docker-content-digest": digest,
            "content-length": String(manifest.length),
          },
        },
      };
    })
    .persist();
  return seen;
}

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = (await res.json()) as { errors: Array<{ code: string; message: string }> };
  return body.errors[0] ?? { code: "", message: "" };
}

async function token(claims: JWTPayload, opts: { key?: PrivateKey; lifetime?: number; iat?: number } = {}) {
  const iat = opts.iat ?? Math.floor(Date.now() / 1000) - 10;
  return new SignJWT({ sub: "system:serviceaccount:prod:puller", ...claims })
    .setProtectedHeader({ alg: "ES256", kid: "k1" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt(iat)
    .setExpirationTime(iat + (opts.lifetime ?? 600))
    .sign(opts.key ?? signingKey);
}

describe("without credentials", () => {
  it("GET /v2/ answers 401 UNAUTHORIZED with the Basic challenge, asking nothing upstream", async () => {
    const { app, deps } = await setup();
    const res = await app.request("/v2/");
    expect(res.status).toBe(401);
    expect(res.headers.get("www-authenticate")).toBe('Basic realm="pullgate"');
    expect((await errorOf(res)).code).toBe("UNAUTHORIZED");
    expect(deps.metrics.upstreamRequests.value({ upstream: deps.config.upstreams[0]?.name ?? "" })).toBe(0);
  });

  it("a manifest, a blob or a HEAD answer 401 with the challenge too", async () => {
    const { app, deps } = await setup(`  realm: "corp registry"\n  htpasswd: htpasswd`);
    for (const [path, method] of [
      ["/v2/proj/app/manifests/v1", "GET"],
      ["/v2/proj/app/manifests/v1", "HEAD"],
      [`/v2/proj/app/blobs/${digest}`, "GET"],
      ["/v2/proj/app/tags/list", "GET"],
    ] as const) {
      const res = await app.request(path, { method });
      expect(res.status, `${method} ${path}`).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="corp registry"');
    }
    expect(deps.metrics.upstreamRequests.value({ upstream: deps.config.upstreams[0]?.name ?? "" })).toBe(0);
  });
});

describe("Basic with an htpasswd user", () => {
  it("lets a valid user in ($2y$ and $2b$ entries) and pulls with pullgate's own upstream login", async () => {
    const { app, logger } = await setup();
    expect((await app.request("/v2/", { headers: { authorization: basic("ci-bot", "ci-pw") } })).status).toBe(
      200,
    );
    expect((await app.request("/v2/", { headers: { authorization: basic("dev", "dev-pw") } })).status).toBe(
      200,
    );
    const seen = upstreamManifest();
    const res = await app.request("/v2/proj/app/manifests/v1", {
      headers: { authorization: basic("ci-bot", "ci-pw"), accept: OCI_MANIFEST },
    });
    expect(res.status).toBe(200);
    expect(Buffer.from(await res.arrayBuffer()).equals(manifest)).toBe(true);
    // The client's Authorization never went upstream: first anonymous, then pullgate's robot login.
    expect(seen).toEqual([undefined, ROBOT]);
    const access = logger.records.filter((r) => r.event === "access");
    expect(access.at(-1)).toMatchObject({ principal: "ci-bot", status: 200, kind: "manifest" });
    expect(JSON.stringify(logger.records)).not.toContain("ci-pw");
    expect(JSON.stringify(logger.records)).not.toContain(Buffer.from("ci-bot:ci-pw").toString("base64"));
  });

  it("answers 401 with the challenge for a wrong password, an unknown user or a malformed header", async () => {
    const { app } = await setup();
    for (const authorization of [
      basic("ci-bot", "wrong"),
      basic("nobody", "ci-pw"),
      basic("ci-bot", ""),
      "Basic not base64!",
      `Basic ${Buffer.from("no-colon").toString("base64")}`,
      "Digest username=ci-bot",
    ]) {
      const res = await app.request("/v2/proj/app/manifests/v1", { headers: { authorization } });
      expect(res.status, authorization).toBe(401);
      expect(res.headers.get("www-authenticate")).toBe('Basic realm="pullgate"');
      expect((await errorOf(res)).code).toBe("UNAUTHORIZED");
    }
  });

  it("runs one bcrypt per user and password (cached), and one for an unknown user too", async () => {
    const calls: string[] = [];
    const { app } = await setup(HTPASSWD_AND_JWT, {
      clientAuth: {
        compare: (password, hash) => {
          calls.push(password);
          return bcrypt.compare(password, hash);
        },
      },
    });
    for (let i = 0; i < 3; i++)
      expect(
        (await app.request("/v2/", { headers: { authorization: basic("ci-bot", "ci-pw") } })).status,
      ).toBe(200);
    expect(calls).toEqual(["ci-pw"]);
    // Failures are not cached; an unknown user costs a bcrypt like a known one.
    await app.request("/v2/", { headers: { authorization: basic("ci-bot", "bad") } });
    await app.request("/v2/", { headers: { authorization: basic("ghost", "bad") } });
    expect(calls).toEqual(["ci-pw", "bad", "bad"]);
    // The cache key covers the password: another password for a cached user is checked.
    expect(
      (await app.request("/v2/", { headers: { authorization: basic("ci-bot", "ci-pw!") } })).status,
    ).toBe(401);
  });

  it("answers 429 TOOMANYREQUESTS when every bcrypt slot and the queue are taken", async () => {
    const pending: Array<(ok: boolean) => void> = [];
    let started!: () => void;
    const firstStarted = new Promise<void>((r) => {
      started = r;
    });
    const { app } = await setup(`  htpasswd: htpasswd`, {
      clientAuth: {
        maxConcurrent: 1,
        maxQueued: 1,
        compare: () =>
          new Promise<boolean>((resolve) => {
            pending.push(resolve);
            started();
          }),
      },
    });
    const running = app.request("/v2/", { headers: { authorization: basic("ci-bot", "a") } });
    await firstStarted;
    const queued = app.request("/v2/", { headers: { authorization: basic("ci-bot", "b") } });
    const refused = await app.request("/v2/", { headers: { authorization: basic("ci-bot", "c") } });
    expect(refused.status).toBe(429);
    expect((await errorOf(refused)).code).toBe("TOOMANYREQUESTS");
    expect(refused.headers.get("retry-after")).toBe("1");
    pending.shift()?.(true);
    expect((await running).status).toBe(200);
    while (pending.length === 0) await new Promise((r) => setImmediate(r));
    pending.shift()?.(false);
    expect((await queued).status).toBe(401);
  });

  it("re-reads the htpasswd file when it changes: new users get in, removed ones do not", async () => {
    const file = join(dir, "htpasswd-reload");
    writeFileSync(file, `old:${bcrypt.hashSync("old-pw", 4)}\n`);
    const a = newAgent();
    const logger = createMemoryLogger();
    const config = parseConfig(`${UPSTREAM}clientAuth: { htpasswd: htpasswd-reload }\n`, {
      source: "t",
      baseDir: dir,
      env: {},
    });
    const deps = await createDeps(config, {
      logger,
      dispatcherFor: () => a,
      clientAuth: { reloadIntervalMs: 0 },
    });
    const app = createApps(deps).proxy;
    expect((await app.request("/v2/", { headers: { authorization: basic("old", "old-pw") } })).status).toBe(
      200,
    );
    writeFileSync(file, `# rotated\nnew:${bcrypt.hashSync("new-pw", 4)}\n`);
    expect((await app.request("/v2/", { headers: { authorization: basic("new", "new-pw") } })).status).toBe(
      200,
    );
    // The cached success of the removed user went with the reload.
    expect((await app.request("/v2/", { headers: { authorization: basic("old", "old-pw") } })).status).toBe(
      401,
    );
    // A broken file is not taken: the last good one stays.
    writeFileSync(file, "new:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=\n# padding so the size changes\n");
    expect((await app.request("/v2/", { headers: { authorization: basic("new", "new-pw") } })).status).toBe(
      200,
    );
    expect(logger.records.some((r) => r.event === "htpasswd not reloaded")).toBe(true);
    expect(JSON.stringify(logger.records)).not.toContain("W6ph5Mm5");
  });
});

describe("JWTs", () => {
  it("accepts Authorization: Bearer <JWT>, and a JWT as the Basic password (any username)", async () => {
    const { app, logger } = await setup();
    const jwt = await token({});
    expect((await app.request("/v2/", { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
    expect((await app.request("/v2/", { headers: { authorization: basic("x", jwt) } })).status).toBe(200);
    expect((await app.request("/v2/", { headers: { authorization: basic("ci-bot", jwt) } })).status).toBe(
      200,
    );
    const access = logger.records.filter((r) => r.event === "access");
    expect(access.at(-1)?.principal).toBe("system:serviceaccount:prod:puller");
    expect(JSON.stringify(logger.records)).not.toContain(jwt);
    // RSA-PSS works as well as ECDSA.
    const now = Math.floor(Date.now() / 1000);
    const ps = await new SignJWT({ sub: "system:serviceaccount:prod:rsa" })
      .setProtectedHeader({ alg: "PS256", kid: "r1" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(rsaKey);
    expect((await app.request("/v2/", { headers: { authorization: `Bearer ${ps}` } })).status).toBe(200);
  });

  it("refuses expired, wrong issuer, wrong audience, too long-lived, future iat and foreign-key tokens", async () => {
    const { app } = await setup();
    const now = Math.floor(Date.now() / 1000);
    const cases: Record<string, string> = {
      expired: await token({}, { iat: now - 7200, lifetime: 600 }),
      issuer: await new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer("https://evil.example")
        .setAudience(AUDIENCE)
        .setSubject("system:serviceaccount:prod:puller")
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(signingKey),
      audience: await new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer(ISSUER)
        .setAudience("another-service")
        .setSubject("system:serviceaccount:prod:puller")
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .sign(signingKey),
      lifetime: await token({}, { lifetime: 3601 }),
      futureIat: await token({}, { iat: now + 86_400 * 365, lifetime: 600 }),
      foreignKey: await token({}, { key: otherKey }),
      noExp: await new SignJWT({})
        .setProtectedHeader({ alg: "ES256", kid: "k1" })
        .setIssuer(ISSUER)
        .setAudience(AUDIENCE)
        .setSubject("system:serviceaccount:prod:puller")
        .setIssuedAt(now)
        .sign(signingKey),
    };
    for (const [name, jwt] of Object.entries(cases)) {
      for (const authorization of [`Bearer ${jwt}`, basic("x", jwt)]) {
        const res = await app.request("/v2/", { headers: { authorization } });
        expect(res.status, name).toBe(401);
        expect(res.headers.get("www-authenticate")).toBe('Basic realm="pullgate"');
      }
    }
    // The same claims, properly signed and short-lived, pass (the cases above differ in one thing each).
    expect(
      (await app.request("/v2/", { headers: { authorization: `Bearer ${await token({})}` } })).status,
    ).toBe(200);
  });

  it("refuses HS256 even when the key set holds a matching symmetric key", async () => {
    const { app } = await setup();
    const now = Math.floor(Date.now() / 1000);
    const hs = await new SignJWT({})
      .setProtectedHeader({ alg: "HS256", kid: "hs" })
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setSubject("system:serviceaccount:prod:puller")
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(HS_SECRET);
    expect((await app.request("/v2/", { headers: { authorization: `Bearer ${hs}` } })).status).toBe(401);
  });

  it("takes the principal from subjectClaim when configured", async () => {
    const { app, logger } = await setup(
      `  jwt: { jwksPath: jwks.json, issuer: "${ISSUER}", audience: ${AUDIENCE}, subjectClaim: email }`,
    );
    const jwt = await token({ email: "ci-bot" });
    expect((await app.request("/v2/", { headers: { authorization: `Bearer ${jwt}` } })).status).toBe(200);
    expect(logger.records.filter((r) => r.event === "access").at(-1)?.principal).toBe("ci-bot");
    // Without the claim: refused.
    expect(
      (await app.request("/v2/", { headers: { authorization: `Bearer ${await token({})}` } })).status,
    ).toBe(401);
    // Basic with an htpasswd user is not possible when only JWTs are configured.
    expect((await app.request("/v2/", { headers: { authorization: basic("ci-bot", "ci-pw") } })).status).toBe(
      401,
    );
  });
});

describe("JWTs with a JWKS fetched from jwksUrl", () => {
  let server: Server;
  let base: string;
  let jwks: string;
  beforeAll(async () => {
    jwks = await readFile(join(dir, "jwks.json"), "utf8");
    server = createServer((req, res) => {
      if (req.url === "/jwks") res.writeHead(200, { "content-type": "application/json" }).end(jwks);
      else if (req.url === "/broken") res.writeHead(500).end("oops");
      // "/hang": never answers.
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const viaUrl = (path: string) =>
    setup(
      `  jwt: { jwksUrl: "${base}${path}", jwksTimeoutMs: 300, issuer: "${ISSUER}", audience: ${AUDIENCE} }`,
    );

  it("verifies against the fetched key set", async () => {
    const { app } = await viaUrl("/jwks");
    expect(
      (await app.request("/v2/", { headers: { authorization: `Bearer ${await token({})}` } })).status,
    ).toBe(200);
    const foreign = await token({}, { key: otherKey });
    expect((await app.request("/v2/", { headers: { authorization: `Bearer ${foreign}` } })).status).toBe(401);
  });

  it("answers 503 (not 401) when the key set cannot be fetched: an error or a timeout", async () => {
    for (const path of ["/broken", "/hang"]) {
      const { app, logger } = await viaUrl(path);
      const res = await app.request("/v2/", { headers: { authorization: `Bearer ${await token({})}` } });
      expect(res.status, path).toBe(503);
      expect((await errorOf(res)).code).toBe("UNAVAILABLE");
      expect(logger.records.some((r) => r.event === "client jwt keys unavailable")).toBe(true);
    }
  });
});

describe("per-project pull lists", () => {
  it("admits listed principals and prefixes, denies others with 403 naming principal and project", async () => {
    const { app } = await setup();
    upstreamManifest("/v2/proj/app/manifests/v1");
    upstreamManifest("/v2/other/app/manifests/v1");
    const get = (path: string, authorization: string) =>
      app.request(path, { headers: { authorization, accept: OCI_MANIFEST } });
    expect((await get("/v2/proj/app/manifests/v1", basic("ci-bot", "ci-pw"))).status).toBe(200);
    expect((await get("/v2/proj/app/manifests/v1", `Bearer ${await token({})}`)).status).toBe(200);

    const denied = await get("/v2/proj/app/manifests/v1", basic("dev", "dev-pw"));
    expect(denied.status).toBe(403);
    const err = await errorOf(denied);
    expect(err.code).toBe("DENIED");
    expect(err.message).toContain('"dev"');
    expect(err.message).toContain('"proj"');
    const devSa = await token({ sub: "system:serviceaccount:dev:puller" });
    expect((await get("/v2/proj/app/manifests/v1", `Bearer ${devSa}`)).status).toBe(403);
    // Blobs and tag lists of the project are gated the same way; nothing went upstream for them.
    expect((await get(`/v2/proj/app/blobs/${digest}`, basic("dev", "dev-pw"))).status).toBe(403);
    expect((await get("/v2/proj/app/tags/list", basic("dev", "dev-pw"))).status).toBe(403);
    // Projects without a list take defaults.pull: ["*"], any authenticated client.
    expect((await get("/v2/other/app/manifests/v1", basic("dev", "dev-pw"))).status).toBe(200);
    // /v2/ only needs authentication.
    expect((await app.request("/v2/", { headers: { authorization: basic("dev", "dev-pw") } })).status).toBe(
      200,
    );
  });

  it("applies defaults.pull to projects without their own list", async () => {
    const a = newAgent();
    const config = parseConfig(
      `${UPSTREAM}clientAuth: { htpasswd: htpasswd }\ndefaults: { pull: ["ci-*"] }\nprojects:\n  open: { pull: ["*"] }\n`,
      { source: "t", baseDir: dir, env: {} },
    );
    const deps = await createDeps(config, { logger: createMemoryLogger(), dispatcherFor: () => a });
    const app = createApps(deps).proxy;
    upstreamManifest("/v2/open/app/manifests/v1");
    const dev = basic("dev", "dev-pw");
    expect((await app.request("/v2/team/app/manifests/v1", { headers: { authorization: dev } })).status).toBe(
      403,
    );
    expect((await app.request("/v2/open/app/manifests/v1", { headers: { authorization: dev } })).status).toBe(
      200,
    );
  });

  it("matches exact names, prefix* and *", () => {
    expect(allows("*", "anyone")).toBe(true);
    expect(allows("ci-bot", "ci-bot")).toBe(true);
    expect(allows("ci-bot", "ci-bot2")).toBe(false);
    expect(allows("ci-bot", "CI-BOT")).toBe(false);
    expect(allows("system:serviceaccount:prod:*", "system:serviceaccount:prod:a")).toBe(true);
    expect(allows("system:serviceaccount:prod:*", "system:serviceaccount:production:a")).toBe(false);
  });
});

describe("upstream refusals with client authentication on", () => {
  it("turn into 403 DENIED instead of relaying the upstream's challenge", async () => {
    const { app } = await setup();
    agent
      .get(UP)
      .intercept({ path: "/v2/proj/app/manifests/v1", method: "GET" })
      .reply(401, "", { headers: { "www-authenticate": 'Basic realm="up"' } })
      .persist();
    const res = await app.request("/v2/proj/app/manifests/v1", {
      headers: { authorization: basic("ci-bot", "ci-pw") },
    });
    expect(res.status).toBe(403);
    expect(res.headers.get("www-authenticate")).toBeNull();
    expect((await errorOf(res)).code).toBe("DENIED");
  });
});

describe("configuration", () => {
  const load = (text: string, baseDir = dir): Config => loadConfig({ text, baseDir, env: {} });
  const problemsOf = (text: string): string[] => {
    try {
      load(text);
    } catch (err) {
      if (err instanceof ConfigError) return [...err.problems];
      throw err;
    }
    return [];
  };

  it("refuses upstream credentials without client authentication, saying what to do", async () => {
    const problems = problemsOf(UPSTREAM);
    expect(problems).toHaveLength(1);
    expect(problems[0]).toMatch(/^upstreams\[0\]\.credentials: /);
    expect(problems[0]).toContain("clientAuth.htpasswd");
    expect(problems[0]).toContain("clientAuth.open: true");
    // Also when the config was parsed without that rule: createDeps refuses to build a proxy from it.
    const parsed = parseConfig(UPSTREAM, { source: "t", baseDir: dir, env: {} });
    await expect(createDeps(parsed, { logger: createMemoryLogger() })).rejects.toBeInstanceOf(ConfigError);
  });

  it("accepts clientAuth.open: true (and no credentials needs nothing): behaviour as before", async () => {
    expect(problemsOf(`${UPSTREAM}clientAuth: { open: true }\n`)).toEqual([]);
    expect(problemsOf(`upstreams:\n  - name: a\n    url: "${UP}"\n`)).toEqual([]);
    const a = newAgent();
    const deps = await createDeps(load(`${UPSTREAM}clientAuth: { open: true }\n`), {
      logger: createMemoryLogger(),
      dispatcherFor: () => a,
    });
    expect(deps.clientAuth).toBeUndefined();
    // Open: the client's own Authorization is forwarded as before.
    agent
      .get(UP)
      .intercept({ path: "/v2/", method: "GET", headers: { authorization: basic("x", "y") } })
      .reply(200, "{}");
    const res = await createApps(deps).proxy.request("/v2/", { headers: { authorization: basic("x", "y") } });
    expect(res.status).toBe(200);
  });

  it("refuses htpasswd entries that are not bcrypt, without printing the hash", () => {
    writeFileSync(
      join(dir, "htpasswd-mixed"),
      [
        `good:${bcrypt.hashSync("pw", 4)}`,
        "md5:$apr1$r31.....$HqJZimcKQFAMYayBlzkrA/",
        "sha:{SHA}W6ph5Mm5Pz8GgiULbPgzG37mj9g=",
        "crypt:rqXexS6ZhobKA",
        "plain:hunter2",
        "",
      ].join("\n"),
    );
    const problems = problemsOf(`${UPSTREAM}clientAuth: { htpasswd: htpasswd-mixed }\n`);
    expect(problems).toHaveLength(4);
    for (const p of problems)
      expect(p).toMatch(/^clientAuth\.htpasswd: htpasswd-mixed: line [2-5] \(".+"\): not a bcrypt hash/);
    expect(problems.join("\n")).not.toContain("HqJZimcKQFAMYayBlzkrA");
    expect(problems.join("\n")).not.toContain("hunter2");
    expect(problems.join("\n")).toContain("htpasswd -B");
  });

  it("reports a missing htpasswd file, a missing JWKS, open together with auth, and pull lists without auth", () => {
    expect(problemsOf(`${UPSTREAM}clientAuth: { htpasswd: nope }\n`)).toEqual([
      "clientAuth.htpasswd: cannot read nope (ENOENT)",
    ]);
    expect(
      problemsOf(`${UPSTREAM}clientAuth: { jwt: { jwksPath: nope.json, issuer: i, audience: a } }\n`),
    ).toEqual(["clientAuth.jwt.jwksPath: cannot read a JSON Web Key Set (ENOENT)"]);
    expect(problemsOf(`${UPSTREAM}clientAuth: { open: true, htpasswd: htpasswd }\n`)).toEqual([
      expect.stringMatching(/^clientAuth\.open: /),
    ]);
    expect(
      problemsOf(`${UPSTREAM}clientAuth: { open: true }\nprojects:\n  proj: { pull: ["ci-bot"] }\n`),
    ).toEqual([expect.stringMatching(/^projects\.proj\.pull: needs client authentication/)]);
    expect(
      problemsOf(`${UPSTREAM}clientAuth: { htpasswd: htpasswd }\nprojects:\n  p: { pull: ["a*b"] }\n`),
    ).toEqual([expect.stringMatching(/^projects\.p\.pull\[0\]: /)]);
  });

  it("resolves pull lists: project, else defaults, else any authenticated client", () => {
    const c = load(
      `${UPSTREAM}clientAuth: { htpasswd: htpasswd }\ndefaults: { pull: ["ci-*"] }\nprojects:\n  a: { pull: ["x"] }\n  b: { mode: audit }\n`,
    );
    expect(c.projects.a?.pull).toEqual(["x"]);
    expect(c.projects.b?.pull).toEqual(["ci-*"]);
    expect(c.defaults.pull).toEqual(["ci-*"]);
    expect(load(`${UPSTREAM}clientAuth: { htpasswd: htpasswd }\n`).defaults.pull).toEqual(["*"]);
  });
});

describe("createConcurrencyLimit", () => {
  it("runs at most maxConcurrent, queues maxQueued, refuses beyond, and hands slots over in order", async () => {
    const limit = createConcurrencyLimit({ maxConcurrent: 2, maxQueued: 1 });
    const gates: Array<() => void> = [];
    const order: number[] = [];
    const task = (n: number) => () =>
      new Promise<number>((resolve) => {
        order.push(n);
        gates.push(() => resolve(n));
      });
    const a = limit.run(task(1));
    const b = limit.run(task(2));
    const c = limit.run(task(3));
    await expect(limit.run(task(4))).rejects.toBeInstanceOf(QueueFullError);
    expect(limit.active).toBe(2);
    expect(limit.queued).toBe(1);
    gates.shift()?.();
    expect(await a).toBe(1);
    while (order.length < 3) await new Promise((r) => setImmediate(r));
    expect(order).toEqual([1, 2, 3]);
    gates.shift()?.();
    gates.shift()?.();
    expect([await b, await c]).toEqual([2, 3]);
    expect(limit.active).toBe(0);
    // A task that throws frees its slot too.
    await expect(limit.run(() => Promise.reject(new Error("x")))).rejects.toThrow("x");
    expect(limit.active).toBe(0);
  });
});
