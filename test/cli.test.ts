import { generateKeyPairSync } from "node:crypto";
import { once } from "node:events";
import { readFile, writeFile } from "node:fs/promises";
import { createServer, request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type ManagedProcess, run, startProcess, waitFor } from "../src/local/index.ts";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./support/signer.ts";

// The pullgate binary as users run it: exit codes, config errors, SIGTERM drain.

const BIN = join(import.meta.dirname, "..", "bin", "pullgate.js");
const node = process.execPath;

let work: string;

beforeAll(async () => {
  work = await makeTempDir("cli-test");
});
afterAll(async () => {
  if (work) await removeDir(work);
});

describe("pullgate serve: configuration", () => {
  it("prints every problem with its path and exits 2, serving nothing", async () => {
    const file = join(work, "bad.yaml");
    await writeFile(
      file,
      `listen: "127.0.0.1:nope"
upstreams:
  - name: a
    url: "ftp://x"
  - name: a
    url: "http://y"
projects:
  proj:
    keys:
      - name: k
        path: missing.pub
`,
    );
    const res = await run(node, [BIN, "serve", "--config", file], { timeoutMs: 20_000 });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("listen: expected");
    expect(res.stderr).toContain("upstreams[0].url: must be http:// or https://");
    expect(res.stderr).toContain('upstreams: duplicate name "a"');
    expect(res.stderr).toContain("projects.proj.keys[0].path: cannot read missing.pub");
    expect(res.stdout).not.toContain('"event":"listening"');
  });

  it("exits 2 for a missing file, an unknown option or command; --check validates without serving", async () => {
    expect((await run(node, [BIN, "serve", "--config", join(work, "nope.yaml")])).code).toBe(2);
    expect((await run(node, [BIN, "serve", "--bogus"])).code).toBe(2);
    expect((await run(node, [BIN, "frobnicate"])).code).toBe(2);
    const embedded = await run(node, [BIN, "serve", "--check"], {
      env: { ...process.env, PULLGATE_CONFIG: "" },
    });
    expect(embedded.code).toBe(0);
    expect(embedded.stdout).toContain("embedded default");
    const file = join(work, "ok.yaml");
    await writeFile(file, 'upstreams:\n  - name: a\n    url: "http://127.0.0.1:1"\n');
    const viaEnv = await run(node, [BIN, "serve", "--check"], {
      env: { ...process.env, PULLGATE_CONFIG: file },
    });
    expect(viaEnv.code).toBe(0);
    expect(viaEnv.stdout).toContain(file);
  });
});

describe("the compiled build (what the container image runs)", () => {
  it("npm run build emits dist/, and the CLI runs from it", async () => {
    const tsc = join(import.meta.dirname, "..", "node_modules", ".bin", "tsc");
    const build = await run(node, [tsc, "-p", join(import.meta.dirname, "..", "tsconfig.build.json")], {
      timeoutMs: 60_000,
    });
    expect(build.code, build.stdout + build.stderr).toBe(0);
    const res = await run(node, [BIN, "serve", "--check"], {
      env: { ...process.env, PULLGATE_CONFIG: "", PULLGATE_ENTRY: "dist" },
    });
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("embedded default");
    // What the image serves besides compiled TypeScript: the console's script, and the CLI's commands.
    const dist = join(import.meta.dirname, "..", "dist");
    await expect(readFile(join(dist, "admin", "console", "console.js"), "utf8")).resolves.toContain("Bearer");
    const version = await run(node, [BIN, "--version"], { env: { ...process.env, PULLGATE_ENTRY: "dist" } });
    expect(version.stdout).toMatch(/^pullgate \d+\.\d+\.\d+/);
  });
});

describe("pullgate serve: trusted keys", () => {
  it("refuses a key verify/ does not accept (RSA-1024) at startup with its path, exit 2", async () => {
    const { publicKey } = generateKeyPairSync("rsa", { modulusLength: 1024 });
    const pem = publicKey.export({ type: "spki", format: "pem" }) as string;
    const file = join(work, "weak.yaml");
    await writeFile(
      file,
      `upstreams:\n  - name: a\n    url: "http://127.0.0.1:1"\nprojects:\n  proj:\n    mode: enforce\n    keys: [{ name: old, pem: ${JSON.stringify(pem)} }]\n`,
    );
    for (const args of [
      ["serve", "--check", "--config", file],
      ["serve", "--config", file],
    ]) {
      const res = await run(node, [BIN, ...args], { timeoutMs: 20_000 });
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr).toContain("projects.proj.keys[0]");
    }
  });
});

describe("pullgate serve: SIGTERM", () => {
  let registry: Registry;
  let image: ImageResult;
  let proc: ManagedProcess | undefined;

  beforeAll(async () => {
    registry = await startRegistry();
    image = await createImage({
      dir: join(work, "layout"),
      tag: "v1",
      layers: [{ size: 20 * 1024 * 1024, seed: "drain" }],
    });
    await pushImage({ layoutDir: join(work, "layout"), tag: "v1", dest: `${registry.host}/proj/app:v1` });
  }, 60_000);
  afterAll(async () => {
    await proc?.stop();
    await registry?.stop();
  });

  it("stops accepting, lets an in-flight blob download finish, fails readiness, and exits 0", async () => {
    const [port, adminPort] = [await freePort(), await freePort()];
    const file = join(work, "serve.yaml");
    await writeFile(
      file,
      `listen: "127.0.0.1:${port}"\nadmin: { listen: "127.0.0.1:${adminPort}" }\nshutdown: { drainTimeoutMs: 15000 }\nupstreams:\n  - name: local\n    url: "${registry.url}"\n`,
    );
    const started = await startProcess({
      name: "pullgate",
      command: node,
      args: [BIN, "serve", "--config", file],
      logDir: work,
      ready: async () => (await fetch(`http://127.0.0.1:${adminPort}/healthz`)).ok,
    });
    proc = started;
    const size = image.layerSizes[0] as number;
    // A slow client: it reads one chunk, pauses across the SIGTERM, then reads the rest.
    let received = 0;
    let resume: () => void = () => {};
    const done = new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        { host: "127.0.0.1", port, path: `/v2/proj/app/blobs/${image.layerDigests[0]}` },
        (res) => {
          res.on("data", (c: Buffer) => {
            received += c.length;
          });
          res.once("data", () => {
            res.pause();
            resume = () => res.resume();
          });
          res.on("end", () => resolve(res.statusCode ?? 0));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    });
    await waitFor(() => received > 0, { description: "the first bytes" });
    process.kill(started.pid, "SIGTERM");
    await waitFor(async () => (await started.logTail(50)).includes('"event":"shutting down"'), {
      description: "pullgate to log the shutdown",
    });
    // New connections are refused while the old one drains.
    await expect(fetch(`http://127.0.0.1:${port}/v2/`)).rejects.toThrow();
    resume();
    expect(await done).toBe(200);
    expect(received).toBe(size);
    expect(await started.exited).toBe(0);
    const log = await started.logTail(200);
    const access = log
      .split("\n")
      .filter((l) => l.startsWith("{"))
      .map((l) => JSON.parse(l) as Record<string, unknown>)
      .filter((r) => r.event === "access");
    expect(access).toContainEqual(
      expect.objectContaining({
        method: "GET",
        kind: "blob",
        repository: "proj/app",
        status: 200,
        bytes: size,
      }),
    );
  });
});

describe("pullgate --version, serve --help, and listen errors", () => {
  it("--version prints the package's version; serve --help says what the admin listener serves", async () => {
    const pkg = JSON.parse(await readFile(join(import.meta.dirname, "..", "package.json"), "utf8")) as {
      version: string;
    };
    const v = await run(node, [BIN, "--version"]);
    expect(v.code).toBe(0);
    expect(v.stdout).toBe(`pullgate ${pkg.version}\n`);
    const help = await run(node, [BIN, "serve", "--help"]);
    expect(help.code).toBe(0);
    for (const words of ["PULLGATE_ADMIN_TOKEN", "/metrics", "/admin/v1/verify", "pullgate verify"])
      expect(help.stdout).toContain(words);
  });

  it("names the listener, its address and the cause when the port is taken", async () => {
    const taken = createServer().listen(0, "127.0.0.1");
    await once(taken, "listening");
    const port = (taken.address() as { port: number }).port;
    const file = join(work, "taken.yaml");
    await writeFile(
      file,
      `listen: "127.0.0.1:${port}"\nupstreams:\n  - { name: a, url: "http://127.0.0.1:1" }\n`,
    );
    try {
      const res = await run(node, [BIN, "serve", "--config", file], { timeoutMs: 20_000 });
      expect(res.code).toBe(1);
      expect(res.stderr).toContain(
        `cannot listen on 127.0.0.1:${port} for the proxy (listen): the address is already in use`,
      );
      expect(res.stderr).toContain("(EADDRINUSE)");
    } finally {
      taken.close();
    }
  });

  it("--check warns about a project that enforces and trusts nobody", async () => {
    const file = join(work, "nobody.yaml");
    await writeFile(
      file,
      `upstreams:\n  - { name: a, url: "http://127.0.0.1:1" }\nprojects:\n  proj: { mode: enforce }\n`,
    );
    const res = await run(node, [BIN, "serve", "--config", file, "--check"]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain(
      "warning: projects.proj.mode is enforce and the policy trusts no key and no keyless identity: every image is denied",
    );
  });
});

describe("pullgate verify REFERENCE (the dry run from the shell)", () => {
  let registry: Registry;
  let pg: TestPullgate;
  const key = generateTestKey();
  const TOKEN = "cli-verify-token";
  beforeAll(async () => {
    registry = await startRegistry();
    const layout = join(work, "verify-layout");
    const writer = new RegistryWriter(registry.url);
    for (const name of ["signed", "unsigned"]) {
      const image = await createImage({
        dir: layout,
        tag: name,
        layers: [{ size: 128, seed: `verify-${name}` }],
      });
      await pushImage({ layoutDir: layout, tag: name, dest: `${registry.host}/proj/${name}:v1` });
      if (name === "signed")
        await signLegacy({ writer, repository: "proj/signed", digest: image.manifestDigest, key });
    }
    pg = await startTestPullgate(
      `  - name: local\n    url: "${registry.url}"`,
      `projects:\n  proj: { mode: enforce, keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }] }\n`,
      { adminToken: TOKEN },
    );
  }, 120_000);
  afterAll(async () => {
    await pg?.stop();
    await registry?.stop();
  });
  const verify = (...args: string[]) =>
    run(node, [BIN, "verify", ...args, "--admin", pg.adminUrl], {
      env: { ...process.env, PULLGATE_ADMIN_TOKEN: TOKEN },
      timeoutMs: 30_000,
    });

  it("said at start what will happen: the projects and modes, the admin API's auth, Redis", () => {
    expect(pg.logs.find((r) => r.event === "ready")).toMatchObject({
      projects: { proj: "enforce" },
      defaultsMode: "off",
      adminApi: { auth: ["token"] },
      redis: expect.stringMatching(/^none/),
    });
  });

  it("says allow and who signed (exit 0), or deny and why (exit 1)", async () => {
    const ok = await verify("proj/signed:v1");
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("(mode enforce): ALLOW");
    expect(ok.stdout).toContain("signed by: release");
    const no = await verify("proj/unsigned:v1");
    expect(no.code).toBe(1);
    expect(no.stdout).toContain("DENY NO_SIGNATURE");
    // The words of the 403 a client pulling it now gets, not only the code.
    expect(no.stdout).toMatch(
      /admits only signed images: proj\/unsigned@sha256:[0-9a-f]{64} has no signature/,
    );
  });

  it("takes the reference as pulled through pullgate (its own host:port), and prints JSON with --json", async () => {
    const res = await verify(`${pg.host}/proj/signed:v1`, "--json");
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({
      outcome: "allow",
      repository: "proj/signed",
      signers: ["release"],
    });
  });

  it("exits 2 without a token or with a wrong one, saying why", async () => {
    const none = await run(node, [BIN, "verify", "proj/signed:v1", "--admin", pg.adminUrl], {
      env: { ...process.env, PULLGATE_ADMIN_TOKEN: "" },
    });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain("PULLGATE_ADMIN_TOKEN");
    const wrong = await run(node, [BIN, "verify", "proj/signed:v1", "--admin", pg.adminUrl], {
      env: { ...process.env, PULLGATE_ADMIN_TOKEN: "wrong" },
    });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toContain("401");
  });
});
