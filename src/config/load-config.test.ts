import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { describe, expect, it } from "vitest";
import { ConfigError, loadConfig, parseConfig } from "./load-config.ts";

const P256_PUB = `-----BEGIN PUBLIC KEY-----
MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEhfvdWCiEPl6xvz3tdl1LGYt79UQo
4e1WPAgHHLCEBBQ6WqrhYFLVVExlDsyHmBUQ8ZpQDhH2w8tewcLmrygVcQ==
-----END PUBLIC KEY-----
`;

const HMAC_KEY = "0123456789abcdef0123456789abcdef-hmac";

/** A self-signed P-256 CA certificate (only parsed here, never used to connect). */
const CA_PEM = `-----BEGIN CERTIFICATE-----
MIIBmzCCAUGgAwIBAgIUVP3ZJSenRvAmbb3hUxCrazjKz/gwCgYIKoZIzj0EAwIw
IjEgMB4GA1UEAwwXcHVsbGdhdGUgY29uZmlnIHRlc3QgQ0EwIBcNMjYxMjA3MDcy
NjM4WhgPMjEyNjExMTMwNzI2MzhaMCIxIDAeBgNVBAMMF3B1bGxnYXRlIGNvbmZp
ZyB0ZXN0IENBMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEiFrFarmgPjQDVYp2
AoVZF++PIaG61GDyDyKIoMUg+u5CzU6cgZ4/UD/fGLveBOeC55iRhFhPM3lP+/sI
hjg/hqNTMFEwHQYDVR0OBBYEFPD/06NkseMqfhZWkt6RNUhhLYq/MB8GA1UdIwQY
MBaAFPD/06NkseMqfhZWkt6RNUhhLYq/MA8GA1UdEwEB/wQFMAMBAf8wCgYIKoZI
zj0EAwIDSAAwRQIhANQY4+dynufI/AFrpayXWROtS0mFxLXXyukBy+T6R9G1AiA0
9HmpwVdMs0MjiMzkk+xOu/t/JSa/fHd7CegPpdeOAQ==
-----END CERTIFICATE-----
`;

function problemsOf(text: string, env: NodeJS.ProcessEnv = {}, baseDir = "."): string[] {
  try {
    parseConfig(text, { source: "t", baseDir, env });
  } catch (err) {
    if (err instanceof ConfigError) return [...err.problems];
    throw err;
  }
  return [];
}

describe("loadConfig", () => {
  it("requires a project's reach when several upstreams are configured, and checks its names", () => {
    const base = `upstreams:\n  - { name: a, url: "http://a.test" }\n  - { name: b, url: "http://b.test" }\n`;
    expect(problemsOf(`${base}projects:\n  p: { mode: enforce }\n`)).toEqual([
      expect.stringMatching(/^projects\.p\.upstreams: required when several upstreams/),
    ]);
    expect(problemsOf(`${base}projects:\n  p: { mode: enforce, upstreams: [c] }\n`)).toEqual([
      'projects.p.upstreams[0]: no upstream is called "c"',
    ]);
    expect(problemsOf(`${base}projects:\n  p: { mode: enforce, upstreams: ["*"] }\n`)).toEqual([]);
    expect(
      problemsOf(`upstreams:\n  - { name: a, url: "http://a.test" }\nprojects:\n  p: { mode: enforce }\n`),
    ).toEqual([]);
  });

  it("accepts the documented contract file as written", () => {
    const dir = mkdtempSync(join(tmpdir(), "pg-config-"));
    writeFileSync(join(dir, "cosign.pub"), P256_PUB);
    writeFileSync(join(dir, "redis-hmac.key"), `${HMAC_KEY}\n`);
    const file = join(dir, "pullgate.yaml");
    writeFileSync(
      file,
      `listen: "127.0.0.1:5050"
admin:
  listen: "127.0.0.1:5051"
  token: "s3cret"
redis:
  url: "redis://127.0.0.1:6379/0"
  hmacKeyFile: redis-hmac.key
upstreams:
  - name: local
    url: "http://127.0.0.1:5000"
    default: true
  - name: hub
    url: "https://registry-1.docker.io"
    registry: "docker.io"
    pathPrefix: "hub"
projects:
  proj:
    upstreams: [local]
    mode: enforce
    keys:
      - name: release
        path: cosign.pub
      - name: inline
        pem: |
${P256_PUB.split("\n")
  .map((l) => `          ${l}`)
  .join("\n")}
defaults:
  mode: "off"
`,
    );
    const config = loadConfig({ path: file, env: {} });
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 5050 });
    expect(config.upstreams.map((u) => [u.name, u.registry, u.default, u.pathPrefix])).toEqual([
      ["local", "127.0.0.1:5000", true, undefined],
      ["hub", "docker.io", false, "hub"],
    ]);
    expect(config.projects.proj?.mode).toBe("enforce");
    expect(config.projects.proj?.keys.map((k) => k.name)).toEqual(["release", "inline"]);
    expect(config.manifests.maxBytes).toBe(4 * 1024 * 1024);
    expect(Object.isFrozen(config.upstreams[0])).toBe(true);
    // Secrets never print.
    const printed = JSON.stringify(config) + inspect(config, { depth: 10 });
    expect(printed).not.toContain("s3cret");
    expect(printed).not.toContain("6379");
    expect(printed).not.toContain(HMAC_KEY);
    expect(config.redis?.hmacKey.reveal()).toBe(HMAC_KEY);
  });

  it("loads the shipped example (examples/pullgate.yaml) and the container image's default", () => {
    const root = join(import.meta.dirname, "..", "..");
    const example = loadConfig({ path: join(root, "examples", "pullgate.yaml"), env: {} });
    expect(example.upstreams.map((u) => u.name)).toEqual(["local", "hub"]);
    expect(example.projects.proj?.keys).toHaveLength(1);
    const container = loadConfig({ path: join(root, "deploy", "container", "pullgate.yaml"), env: {} });
    expect(container.listen).toEqual({ host: "0.0.0.0", port: 5050 });
  });

  it("runs on the embedded default without a file: Docker Hub, off, 127.0.0.1:5050/5051", () => {
    const config = loadConfig({ env: {} });
    expect(config.upstreams).toHaveLength(1);
    expect(config.upstreams[0]).toMatchObject({
      url: "https://registry-1.docker.io",
      registry: "docker.io",
      default: true,
    });
    expect(config.listen).toEqual({ host: "127.0.0.1", port: 5050 });
    expect(config.admin.listen).toEqual({ host: "127.0.0.1", port: 5051 });
    expect(config.defaults.mode).toBe("off");
  });

  it("loads the built-in public-good root and configured trusted roots, and reports unreadable or unknown ones", () => {
    const dir = mkdtempSync(join(tmpdir(), "pg-roots-"));
    writeFileSync(
      join(dir, "corp.json"),
      readFileSync(new URL("../../trust/public-good.trusted_root.json", import.meta.url)),
    );
    writeFileSync(join(dir, "broken.json"), "{}");
    const base = 'upstreams:\n  - name: a\n    url: "http://r.test"\n';
    const config = parseConfig(`${base}trustedRoots:\n  corp: { path: corp.json }\n`, {
      source: "t",
      baseDir: dir,
      env: {},
    });
    expect([...config.trustedRoots.keys()].sort()).toEqual(["corp", "public-good"]);
    expect(config.trustedRoots.get("corp")?.sha256).toBe(config.trustedRoots.get("public-good")?.sha256);
    expect(
      problemsOf(`${base}trustedRoots:\n  x: { path: missing.json }\n  y: { path: broken.json }\n`, {}, dir),
    ).toEqual([
      expect.stringMatching(/^trustedRoots\.x\.path: cannot read .*missing\.json \(ENOENT\)/),
      "trustedRoots.y.path: trusted root y: has no transparency log and no certificate authority",
    ]);
    expect(
      problemsOf(
        `${base}defaults:\n  keyless: [{ name: ci, issuer: "https://i", subject: s, trustedRoot: corp }]\n`,
      ),
    ).toEqual([
      'defaults.keyless[0].trustedRoot: no trusted root is called "corp" (configure it under trustedRoots)',
    ]);
  });

  it("reports every problem with its path at once", () => {
    const problems = problemsOf(`
listen: "nope"
upstreams:
  - name: a
    url: "ftp://x"
    default: true
  - name: a
    url: "http://y/path"
    default: true
    redirect: follow
projects:
  Proj:
    mode: strict
  ok:
    keys:
      - name: k
        path: /nonexistent/key.pub
`);
    expect(problems.some((p) => p.startsWith("upstreams[1]") && p.includes("redirect"))).toBe(true);
    expect(problems.some((p) => p.startsWith("projects.Proj"))).toBe(true);
    // zod-level problems stop before semantic checks; fix them and the rest are reported together:
    const semantic = problemsOf(`
listen: "nope"
upstreams:
  - name: a
    url: "ftp://x"
    default: true
  - name: a
    url: "http://y/path"
    default: true
projects:
  ok:
    keys:
      - name: k
        path: /nonexistent/key.pub
      - name: bad
        pem: "not a key"
`);
    expect(semantic).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^listen: /),
        expect.stringMatching(/^upstreams\[0\]\.url: must be http/),
        expect.stringMatching(/^upstreams\[1\]\.url: must be an origin/),
        expect.stringMatching(/^upstreams: duplicate name "a"/),
        expect.stringMatching(/^upstreams: only one upstream can be the default/),
        expect.stringMatching(/^projects\.ok\.keys\[0\]\.path: cannot read/),
        expect.stringMatching(/^projects\.ok\.keys\[1\]: key bad: expected exactly one PEM block/),
      ]),
    );
  });

  it("says schema problems in words, with the setting a misspelt key probably means, and absolute paths", () => {
    expect(
      problemsOf(`listen: 5
upstreams:
  - { name: a, url: "http://x", defualt: true }
projects:
  p: { mode: strict, treshold: 2 }
cahce: {}
`),
    ).toEqual([
      "listen: must be a string, not a number",
      'upstreams[0]: unknown setting "defualt" (did you mean "default"?)',
      'projects.p.mode: must be one of "off", "audit", "enforce"',
      'projects.p: unknown setting "treshold" (did you mean "threshold"?)',
      '(root): unknown setting "cahce" (did you mean "cache"?)',
    ]);
    expect(problemsOf(`upstreams:\n  - { url: "http://x" }\n`)).toEqual([
      "upstreams[0].name: is required (a string)",
    ]);
    const dir = mkdtempSync(join(tmpdir(), "pullgate-paths-"));
    expect(
      problemsOf(
        `upstreams:\n  - { name: a, url: "http://x" }\nprojects:\n  p: { keys: [{ name: k, path: keys/k.pub }] }\n`,
        {},
        dir,
      ),
    ).toEqual([`projects.p.keys[0].path: cannot read keys/k.pub at ${join(dir, "keys/k.pub")} (ENOENT)`]);
  });

  it("a schema problem does not hide the others: the rest of the file is checked without the bad setting", () => {
    const dir = mkdtempSync(join(tmpdir(), "pullgate-stages-"));
    expect(
      problemsOf(
        `listen: "nope"
upstreams:
  - { name: a, url: "ftp://x" }
projects:
  p: { mode: enforce, exempt: ["p/(a|b)"], keys: [{ name: k, path: missing.pub }] }
  q: { mode: enforce, requiredSigners: [ghost] }
`,
        {},
        dir,
      ),
    ).toEqual([
      "projects.p.exempt[0]: a repository glob like 'proj/tools/*' or 'proj/**'",
      'listen: expected "host:port" (e.g. "127.0.0.1:5050" or "[::1]:5050"), got "nope"',
      "upstreams[0].url: must be http:// or https://",
      `projects.p.keys[0].path: cannot read missing.pub at ${join(dir, "missing.pub")} (ENOENT)`,
      'projects.q.requiredSigners[0]: no key or keyless identity is called "ghost"',
    ]);
  });

  it("takes the log's level, format and audit file, and says what is wrong with them", () => {
    const up = `upstreams:\n  - { name: a, url: "http://127.0.0.1:1" }\n`;
    expect(problemsOf(`${up}log: { level: verbose, format: xml }\n`)).toEqual([
      'log.level: must be one of "debug", "info", "warn", "error"',
      'log.format: must be one of "json", "text"',
    ]);
    expect(problemsOf(`${up}log: { audit: { to: file } }\n`)).toEqual([
      "log.audit.path: required with log.audit.to: file",
    ]);
    expect(problemsOf(`${up}log: { audit: { path: a.log } }\n`)).toEqual([
      "log.audit.path: only with log.audit.to: file",
    ]);
    const dir = mkdtempSync(join(tmpdir(), "pullgate-log-"));
    const config = parseConfig(
      `${up}log: { level: warn, format: text, audit: { to: file, path: audit.log } }\n`,
      {
        source: "t",
        baseDir: dir,
        env: {},
      },
    );
    expect(config.log).toMatchObject({
      level: "warn",
      format: "text",
      audit: { to: "file", path: join(dir, "audit.log") },
    });
  });

  it("checks the supply-chain options against each other, once merged over defaults", () => {
    const key = (name: string) => `{ name: ${name}, pem: ${JSON.stringify(P256_PUB)} }`;
    const problems = problemsOf(`
upstreams:
  - name: a
    url: "http://127.0.0.1:5000"
defaults:
  keys: [${key("release")}]
  requiredSigners: [release]
projects:
  counted:
    keys: [${key("dup")}, ${key("dup")}]
    threshold: 3
  attested:
    attestations:
      - { name: scan, predicateType: "https://x/v1", signers: [security], condition: "predicate.(" }
      - { name: scan, predicateType: "https://y/v1", condition: "predicate.ok" }
  clouds:
    keys:
      - { name: vault, kms: "hashivault://release" }
      - { name: gcp, kms: "gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k" }
`);
    expect(problems).toEqual(
      expect.arrayContaining([
        'projects.counted.keys/keyless: the name "dup" is used twice (signers are counted by name)',
        'projects.counted.requiredSigners[0]: no key or keyless identity is called "release"',
        "projects.counted.threshold: 3 signers required, but the policy has only 1 distinct signer name(s)",
        expect.stringMatching(/^projects\.attested\.attestations\[0\]\.condition: Syntax error/),
        'projects.attested.attestations[0].signers[0]: no key or keyless identity is called "security"',
        'projects.attested.attestations[1].name: "scan" is used twice',
        expect.stringMatching(/^projects\.clouds\.keys\[0\]\.kms: .*not supported by pullgate/),
        expect.stringMatching(/^projects\.clouds\.keys\[1\]\.kms: .*cryptoKeyVersions/),
      ]),
    );
    const window = problemsOf(`
upstreams:
  - { name: a, url: "http://127.0.0.1:5000" }
projects:
  w:
    keys:
      - { name: k, pem: ${JSON.stringify(P256_PUB)}, notBefore: "2027-01-01T00:00:00Z", notAfter: "2026-01-01T00:00:00Z" }
`);
    expect(window).toEqual([expect.stringMatching(/^projects\.w\.keys\[0\]: notBefore is after notAfter/)]);
    // The defaults alone are consistent: the project that keeps their keys is not reported.
    expect(problems.some((p) => p.startsWith("defaults."))).toBe(false);
  });

  it("takes credentials and the admin token from env or files, and complains when they are missing", () => {
    const dir = mkdtempSync(join(tmpdir(), "pg-config-"));
    writeFileSync(join(dir, "pw"), "from-file\n");
    const config = parseConfig(
      `upstreams:
  - name: a
    url: "https://r.test"
    credentials: { usernameEnv: U, passwordFile: pw }
`,
      { source: "t", baseDir: dir, env: { U: "bot", PULLGATE_ADMIN_TOKEN: "tok" } },
    );
    // A password file is read when used (src/upstream/credential-source.ts); here only checked readable.
    expect(config.upstreams[0]?.credentials).toEqual({
      kind: "passwordFile",
      username: "bot",
      passwordFile: join(dir, "pw"),
    });
    expect(config.admin.token?.reveal()).toBe("tok");
    expect(
      problemsOf(
        `upstreams:\n  - name: a\n    url: "https://r.test"\n    credentials: { username: u, passwordEnv: NOPE }\n`,
      ),
    ).toEqual(["upstreams[0].credentials.passwordEnv: environment variable NOPE is not set"]);
    expect(
      problemsOf(
        `upstreams:\n  - name: a\n    url: "https://r.test"\n    credentials: { username: u, password: a, passwordEnv: B }\n`,
      ),
    ).toHaveLength(1);
  });

  it("takes a credential helper by name, without running or looking for it", () => {
    const up = (url: string, creds: string) =>
      `upstreams:\n  - name: a\n    url: "${url}"\n    credentials: ${creds}\n`;
    const parse = (text: string) =>
      parseConfig(text, { source: "t", baseDir: ".", env: {} }).upstreams[0]?.credentials;
    // Not on PATH here (env has no PATH): loading (and `serve --check`) never runs a helper.
    expect(parse(up("https://123.dkr.ecr.us-east-1.amazonaws.com", "{ helper: ecr-login }"))).toEqual({
      kind: "helper",
      helper: "ecr-login",
      serverUrl: "123.dkr.ecr.us-east-1.amazonaws.com",
      timeoutMs: 10_000,
      cacheSeconds: 900,
    });
    expect(
      parse(up("http://127.0.0.1:5000", "{ helper: gcr, timeoutMs: 2000, cacheSeconds: 3000 }")),
    ).toMatchObject({
      serverUrl: "127.0.0.1:5000",
      timeoutMs: 2_000,
      cacheSeconds: 3_000,
    });
    // Docker's credential store knows Docker Hub by its v1 URL.
    expect(parse(up("https://registry-1.docker.io", "{ helper: desktop }"))).toMatchObject({
      serverUrl: "https://index.docker.io/v1/",
    });
    expect(
      parse(up("https://mirror.internal", "{ helper: gcr, serverUrl: us-docker.pkg.dev }")),
    ).toMatchObject({
      serverUrl: "us-docker.pkg.dev",
    });
    expect(problemsOf(up("https://r.test", "{ helper: ecr-login, username: u, password: p }"))).toEqual([
      "upstreams[0].credentials: give either helper or username/password, not both (remove username, password)",
    ]);
    expect(problemsOf(up("https://r.test", "{ helper: ../../bin/sh }"))).toEqual([
      expect.stringMatching(/^upstreams\[0\]\.credentials\.helper: a credential helper name like ecr-login/),
    ]);
    expect(problemsOf(up("https://r.test", "{ username: u, password: p, cacheSeconds: 60 }"))).toEqual([
      "upstreams[0].credentials: cacheSeconds: only with helper",
    ]);
    expect(problemsOf(up("https://r.test", "{}"))).toEqual([
      "upstreams[0].credentials: give exactly one of username or usernameEnv (or a helper instead)",
      "upstreams[0].credentials: give exactly one of password, passwordEnv or passwordFile",
    ]);
  });

  it("refuses a credential helper without client authentication, like any upstream login", () => {
    const text =
      'upstreams:\n  - name: ecr\n    url: "https://r.test"\n    credentials: { helper: ecr-login }\n';
    expect(() =>
      parseConfig(text, { source: "t", baseDir: ".", env: {}, requireClientAuthForCredentials: true }),
    ).toThrow(
      /upstreams\[0\]\.credentials: without client authentication anyone who reaches pullgate pulls from "ecr"/,
    );
    expect(() =>
      parseConfig(`${text}clientAuth: { open: true }\n`, {
        source: "t",
        baseDir: ".",
        env: {},
        requireClientAuthForCredentials: true,
      }),
    ).not.toThrow();
  });

  it("takes the Redis URL from the environment when asked, and checks it", () => {
    const base = 'upstreams:\n  - name: a\n    url: "http://r.test"\n';
    const c = parseConfig(`${base}redis: { urlEnv: R, hmacKeyEnv: K }\n`, {
      source: "t",
      baseDir: ".",
      env: { R: "redis://:pw@redis:6379/0", K: HMAC_KEY },
    });
    expect(c.redis?.url.reveal()).toBe("redis://:pw@redis:6379/0");
    expect(problemsOf(`${base}redis: { urlEnv: R, hmacKeyEnv: K }\n`, { K: HMAC_KEY })).toEqual([
      "redis.urlEnv: environment variable R is not set",
    ]);
    expect(
      problemsOf(`${base}redis: { urlEnv: R, hmacKeyEnv: K }\n`, { R: "http://x", K: HMAC_KEY }),
    ).toEqual(["redis.urlEnv: must start with redis:// or rediss://"]);
    expect(
      problemsOf(`${base}redis: { url: "redis://a", urlEnv: R, hmacKeyEnv: K }\n`, {
        R: "redis://b",
        K: HMAC_KEY,
      }),
    ).toHaveLength(1);
  });

  it("requires exactly one Redis HMAC key source, of at least 32 bytes, and never shows the key", () => {
    const base = 'upstreams:\n  - name: a\n    url: "http://r.test"\nredis:\n  url: "redis://r:6379"\n';
    const dir = mkdtempSync(join(tmpdir(), "pg-config-"));
    writeFileSync(join(dir, "hmac.key"), `  ${HMAC_KEY}\n`);
    writeFileSync(join(dir, "short.key"), "too-short-key\n");
    const fromFile = parseConfig(`${base}  hmacKeyFile: hmac.key\n`, { source: "t", baseDir: dir, env: {} });
    expect(fromFile.redis?.hmacKey.reveal()).toBe(HMAC_KEY);
    const fromEnv = parseConfig(`${base}  hmacKeyEnv: K\n`, {
      source: "t",
      baseDir: dir,
      env: { K: HMAC_KEY },
    });
    expect(fromEnv.redis?.hmacKey.reveal()).toBe(HMAC_KEY);
    // Required whenever Redis is configured.
    const missing = problemsOf(base);
    expect(missing).toHaveLength(1);
    expect(missing[0]).toMatch(/^redis: give exactly one of hmacKeyEnv or hmacKeyFile/);
    expect(problemsOf(`${base}  hmacKeyEnv: K\n  hmacKeyFile: hmac.key\n`, { K: HMAC_KEY }, dir)).toEqual(
      missing,
    );
    expect(problemsOf(`${base}  hmacKeyEnv: K\n`, {})).toEqual([
      "redis.hmacKeyEnv: environment variable K is not set",
    ]);
    expect(problemsOf(`${base}  hmacKeyFile: nope.key\n`, {}, dir)).toEqual([
      "redis.hmacKeyFile: cannot read (ENOENT)",
    ]);
    const short = [
      ...problemsOf(`${base}  hmacKeyEnv: K\n`, { K: "x".repeat(31) }),
      ...problemsOf(`${base}  hmacKeyFile: short.key\n`, {}, dir),
    ];
    expect(short).toEqual([
      expect.stringMatching(/^redis\.hmacKeyEnv: the key must be at least 32 bytes/),
      expect.stringMatching(/^redis\.hmacKeyFile: the key must be at least 32 bytes/),
    ]);
    expect(short.join("\n")).not.toContain("too-short-key");
    expect(problemsOf(`${base}  hmacKeyEnv: K\n`, { K: "x".repeat(32) })).toEqual([]);
  });

  it("checks kms.awsEndpointCaFile like redis.caFile: readable, certificates, named by its absolute path", () => {
    const dir = mkdtempSync(join(tmpdir(), "pg-config-"));
    try {
      writeFileSync(join(dir, "ca.pem"), CA_PEM);
      writeFileSync(join(dir, "key.pem"), P256_PUB);
      const base = 'upstreams:\n  - name: a\n    url: "http://r.test"\nkms:\n  awsEndpointCaFile: ';
      expect(parseConfig(`${base}ca.pem\n`, { source: "t", baseDir: dir, env: {} }).kms.awsEndpointCa).toBe(
        CA_PEM,
      );
      expect(problemsOf(`${base}missing.pem\n`, {}, dir)).toEqual([
        `kms.awsEndpointCaFile: cannot read ${join(dir, "missing.pem")} (ENOENT)`,
      ]);
      expect(problemsOf(`${base}key.pem\n`, {}, dir)).toEqual([
        `kms.awsEndpointCaFile: ${join(dir, "key.pem")} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`,
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads redis.caFile (relative to the config file) for rediss:// only, and checks it at startup", () => {
    const dir = mkdtempSync(join(tmpdir(), "pg-config-"));
    try {
      writeFileSync(join(dir, "redis-ca.pem"), CA_PEM);
      writeFileSync(join(dir, "not-a-cert.pem"), P256_PUB);
      writeFileSync(join(dir, "broken.pem"), CA_PEM.replace("MIIB", "MIIX"));
      const base = 'upstreams:\n  - name: a\n    url: "http://r.test"\nredis:\n  hmacKeyEnv: K\n';
      const env = { K: HMAC_KEY, R: "rediss://:pw@redis:6380" };
      const topologies = [
        '  url: "rediss://redis:6380"\n',
        "  urlEnv: R\n",
        '  cluster: ["rediss://r-0:6379", "rediss://r-1:6379"]\n',
        '  sentinels: ["rediss://s-0:26379"]\n  name: m\n',
      ];
      for (const topology of topologies) {
        const c = parseConfig(`${base}${topology}  caFile: redis-ca.pem\n`, {
          source: "t",
          baseDir: dir,
          env,
        });
        expect(c.redis?.ca, topology).toBe(CA_PEM);
      }
      expect(
        parseConfig(`${base}${topologies[0]}`, { source: "t", baseDir: dir, env }).redis?.ca,
      ).toBeUndefined();
      const problems = (extra: string) => problemsOf(`${base}${extra}`, env, dir);
      expect(problems(`${topologies[0]}  caFile: missing.pem\n`)).toEqual([
        `redis.caFile: cannot read ${join(dir, "missing.pem")} (ENOENT)`,
      ]);
      for (const file of ["not-a-cert.pem", "broken.pem"]) {
        expect(problems(`${topologies[0]}  caFile: ${file}\n`)).toEqual([
          `redis.caFile: ${join(dir, file)} is not a PEM certificate (-----BEGIN CERTIFICATE-----)`,
        ]);
      }
      // Without TLS a CA protects nothing: refused, not ignored (and the URL is never shown).
      for (const plain of ['  url: "redis://:pw@redis:6379"\n', '  cluster: ["redis://r-0:6379"]\n']) {
        expect(problems(`${plain}  caFile: redis-ca.pem\n`)).toEqual([
          "redis.caFile: goes with rediss:// (TLS) URLs only",
        ]);
      }
      expect(problems(`${topologies[0]}  cafile: redis-ca.pem\n`)).toEqual([
        'redis: unknown setting "cafile" (did you mean "caFile"?)',
      ]);
      expect(problems(`${topologies[0]}  caFiel: redis-ca.pem\n`)).toEqual([
        'redis: unknown setting "caFiel" (did you mean "caFile"?)',
      ]);
      expect(problems(`${topologies[0]}  caFile: ""\n`)).toHaveLength(1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("rejects YAML errors, duplicate keys and an empty upstream list", () => {
    expect(problemsOf("listen: [")[0]).toMatch(/^YAML: /);
    expect(problemsOf("upstreams: []\nupstreams: []\n")[0]).toMatch(/^YAML: /);
    expect(problemsOf("upstreams: []\n")).toEqual(["upstreams: at least one upstream is needed"]);
  });

  it("checks the TLS certificate and key at startup", () => {
    const dir = mkdtempSync(join(tmpdir(), "pg-config-"));
    const problems = problemsOf(
      'tls: { cert: missing.pem, key: missing.key }\nupstreams:\n  - name: a\n    url: "http://r.test"\n',
      {},
      dir,
    );
    expect(problems).toEqual([
      "tls.cert: cannot read missing.pem (ENOENT)",
      "tls.key: cannot read missing.key (ENOENT)",
    ]);
    writeFileSync(join(dir, "c.pem"), "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n");
    writeFileSync(join(dir, "k.pem"), P256_PUB);
    expect(
      problemsOf(
        'tls: { cert: c.pem, key: k.pem }\nupstreams:\n  - name: a\n    url: "http://r.test"\n',
        {},
        dir,
      ),
    ).toEqual(["tls: the certificate and key are not a valid PEM pair"]);
  });

  it("makes a single upstream the default and parses IPv6 listen addresses", () => {
    const c = parseConfig(`listen: "[::1]:0"\nupstreams:\n  - name: a\n    url: "http://r.test"\n`, {
      source: "t",
      baseDir: ".",
      env: {},
    });
    expect(c.upstreams[0]?.default).toBe(true);
    expect(c.listen).toEqual({ host: "::1", port: 0 });
  });
});
