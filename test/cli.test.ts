import { generateKeyPairSync } from "node:crypto";
import { writeFile } from "node:fs/promises";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, type ManagedProcess, run, startProcess, waitFor } from "../src/local/index.ts";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { type Registry, startRegistry } from "./support/registry.ts";

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
