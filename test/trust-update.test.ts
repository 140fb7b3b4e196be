import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { type AddressInfo, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { freePort, run, startProcess, waitFor } from "../src/local/index.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { TufRepository } from "./support/tuf-repository.ts";
import { PGI_ROOT, vectorBytes } from "./support/vectors.ts";

// `pullgate trust update`: the trusted root over TUF from a repository made and served in the test.

const BIN = join(import.meta.dirname, "..", "bin", "pullgate.js");
const BUILT_IN = readFileSync(join(import.meta.dirname, "..", "trust", "public-good.trusted_root.json"));
const PGI = vectorBytes(PGI_ROOT);
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

let work: string;
let config: string;
let rootFile: string;
let tufRoot: string;
const repositories: TufRepository[] = [];

beforeAll(async () => {
  work = await makeTempDir("trust-update");
  config = join(work, "pullgate.yaml");
  rootFile = join(work, "corp.trusted_root.json");
  tufRoot = join(work, "tuf-root.json");
  await writeFile(
    config,
    `listen: "127.0.0.1:0"
admin: { listen: "127.0.0.1:0" }
upstreams:
  - name: local
    url: "http://127.0.0.1:9"
trustedRoots:
  corp: { path: corp.trusted_root.json }
projects:
  prod:
    mode: enforce
    keyless:
      - name: ci
        issuer: https://github.com/login/oauth
        subject: mitr@redhat.com
        trustedRoot: corp
`,
  );
});
afterEach(async () => {
  for (const repository of repositories.splice(0)) await repository.stop();
});
afterAll(async () => {
  if (work) await removeDir(work);
});

/** A repository publishing `content` as trusted_root.json, started, with its root.json written for --tuf-root. */
async function serveRepository(content: Buffer): Promise<{ repository: TufRepository; url: string }> {
  const repository = new TufRepository();
  repositories.push(repository);
  repository.publish({ "trusted_root.json": content });
  await writeFile(tufRoot, repository.rootJson);
  return { repository, url: await repository.start() };
}

function trustUpdate(url: string, cache: string, ...extra: string[]) {
  return run(
    process.execPath,
    [
      BIN,
      "trust",
      "update",
      "--config",
      config,
      "--root",
      "corp",
      "--mirror",
      url,
      "--tuf-root",
      tufRoot,
      "--cache",
      join(work, cache),
      ...extra,
    ],
    { timeoutMs: 30_000 },
  );
}

describe("pullgate trust update", () => {
  it("writes the repository's trusted root into the configured file, then says it is current", async () => {
    await writeFile(rootFile, BUILT_IN);
    const { repository, url } = await serveRepository(PGI);
    const first = await trustUpdate(url, "cache-1");
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(sha256(await readFile(rootFile))).toBe(sha256(PGI));
    expect(first.stdout).toContain(`trusted root corp updated from ${url}`);
    expect(first.stdout).toContain(`sha256 ${sha256(BUILT_IN)} -> ${sha256(PGI)}`);
    // It went through TUF: timestamp, snapshot and targets metadata, then the target by its hash.
    expect(repository.requests).toEqual(
      expect.arrayContaining([
        "timestamp.json",
        "1.snapshot.json",
        "1.targets.json",
        `targets/${sha256(PGI)}.trusted_root.json`,
      ]),
    );

    const again = await trustUpdate(url, "cache-1");
    expect(again.code).toBe(0);
    expect(again.stdout).toContain(`trusted root corp is current`);
  });

  it("follows a new version of the repository, and a running pullgate reloads the file", async () => {
    await writeFile(rootFile, PGI);
    const { repository, url } = await serveRepository(PGI);
    const logDir = await makeTempDir("trust-update-serve");
    const serveLog = () => readFile(join(logDir, "pullgate.log"), "utf8").catch(() => "");
    const pullgate = await startProcess({
      name: "pullgate",
      command: process.execPath,
      args: [BIN, "serve", "--config", config],
      logDir,
      ready: async () => (await serveLog()).includes('"listening"'),
    });
    try {
      expect((await trustUpdate(url, "cache-2")).stdout).toContain("is current");

      repository.publish({ "trusted_root.json": BUILT_IN });
      const update = await trustUpdate(url, "cache-2");
      expect(update.code).toBe(0);
      expect(sha256(await readFile(rootFile))).toBe(sha256(BUILT_IN));
      await waitFor(async () => (await pullgate.logTail(50)).includes(`"sha256":"${sha256(BUILT_IN)}"`), {
        timeoutMs: 15_000,
      });
      expect(await pullgate.logTail(50)).toContain("trusted root reloaded");
    } finally {
      await pullgate.stop();
      await removeDir(logDir);
    }
  });

  it("refuses a target whose bytes differ from what the signed metadata lists, and keeps the file", async () => {
    await writeFile(rootFile, BUILT_IN);
    const { repository, url } = await serveRepository(PGI);
    const tampered = Buffer.from(PGI);
    tampered.writeUInt8((tampered.at(-3) as number) ^ 1, tampered.length - 3);
    repository.files.set(`targets/${sha256(PGI)}.trusted_root.json`, tampered);
    const res = await trustUpdate(url, "cache-3");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`cannot fetch trusted_root.json from ${url} over TUF`);
    expect(res.stderr).toContain("is unchanged");
    expect(sha256(await readFile(rootFile))).toBe(sha256(BUILT_IN));
  });

  it("refuses metadata signed by a key the TUF root does not list, and keeps the file", async () => {
    await writeFile(rootFile, BUILT_IN);
    const { repository, url } = await serveRepository(PGI);
    repository.publish({ "trusted_root.json": PGI }, "stranger");
    const res = await trustUpdate(url, "cache-4");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("over TUF: timestamp was signed by 0/1 keys");
    expect(sha256(await readFile(rootFile))).toBe(sha256(BUILT_IN));
  });

  it("refuses a validly published trusted_root.json that is not a usable trusted root", async () => {
    await writeFile(rootFile, BUILT_IN);
    const { url } = await serveRepository(
      Buffer.from('{"mediaType":"application/vnd.dev.sigstore.trustedroot+json;version=0.1"}'),
    );
    const res = await trustUpdate(url, "cache-5");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("serves a trusted_root.json pullgate cannot use");
    expect(res.stderr).toContain("has no transparency log and no certificate authority");
    expect(sha256(await readFile(rootFile))).toBe(sha256(BUILT_IN));
  });

  it("gives up after --timeout-ms on a mirror that accepts connections and never answers, keeping the file", async () => {
    await writeFile(rootFile, BUILT_IN);
    await writeFile(tufRoot, new TufRepository().rootJson);
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    try {
      const port = (silent.address() as AddressInfo).port;
      const res = await trustUpdate(`http://127.0.0.1:${port}`, "cache-6", "--timeout-ms", "1000");
      expect(res.code).toBe(1);
      expect(res.stderr).toContain("over TUF");
      expect(sha256(await readFile(rootFile))).toBe(sha256(BUILT_IN));
    } finally {
      await new Promise<void>((resolve) => {
        silent.close(() => resolve());
        for (const socket of sockets.splice(0)) socket.destroy();
      });
    }
  });

  it("fails when nothing listens at the mirror, keeping the file", async () => {
    await writeFile(rootFile, BUILT_IN);
    await writeFile(tufRoot, new TufRepository().rootJson);
    const res = await trustUpdate(`http://127.0.0.1:${await freePort()}`, "cache-7");
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("over TUF");
    expect(sha256(await readFile(rootFile))).toBe(sha256(BUILT_IN));
  });

  it("says what is missing: a root without a file, a mirror for a private root, a bad URL", async () => {
    const builtIn = await run(process.execPath, [BIN, "trust", "update", "--config", config], {
      timeoutMs: 20_000,
    });
    expect(builtIn.code).toBe(2);
    expect(builtIn.stderr).toContain("no trustedRoots.public-good.path to write");
    const noMirror = await run(
      process.execPath,
      [BIN, "trust", "update", "--config", config, "--root", "corp"],
      {
        timeoutMs: 20_000,
      },
    );
    expect(noMirror.code).toBe(2);
    expect(noMirror.stderr).toContain("--mirror URL is needed for trusted root corp");
    const badUrl = await run(
      process.execPath,
      [BIN, "trust", "update", "--config", config, "--mirror", "file:///etc"],
      {
        timeoutMs: 20_000,
      },
    );
    expect(badUrl.code).toBe(2);
    expect(badUrl.stderr).toContain("--mirror must be an http(s) URL");
  });
});
