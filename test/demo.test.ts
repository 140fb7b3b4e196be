import { spawn } from "node:child_process";
import { readdirSync, readFileSync, readlinkSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "../src/config/index.ts";
import { isPortOpen, run } from "../src/local/index.ts";
import { makeTempDir, removeDir } from "./support/process.ts";

// `pullgate demo` as a newcomer runs it: the binary, a real docker-registry, skopeo (and Redis when
// installed). Its temp dirs go to a TMPDIR of our own, so we can tell that it removed them and that
// nothing it started (by working directory or command line under that TMPDIR) is left running.

const BIN = join(import.meta.dirname, "..", "bin", "pullgate.js");
const BEGIN = "----- pullgate.yaml -----";
const END = "----- end of pullgate.yaml -----";

let tmp: string;
beforeAll(async () => {
  tmp = await makeTempDir("demo-test");
});
afterAll(async () => {
  if (tmp) await removeDir(tmp);
});

function demoEnv(): NodeJS.ProcessEnv {
  return { ...process.env, TMPDIR: tmp, NO_COLOR: "1" };
}

/** The config printed between the markers. */
function printedConfig(stdout: string): string {
  const start = stdout.indexOf(`${BEGIN}\n`);
  const end = stdout.indexOf(`\n${END}`);
  expect(start).toBeGreaterThanOrEqual(0);
  expect(end).toBeGreaterThan(start);
  return stdout.slice(start + BEGIN.length + 1, end + 1);
}

/** Processes whose working directory or command line is under `dir`. */
function processesUnder(dir: string): string[] {
  const found: string[] = [];
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").replaceAll("\0", " ");
      let cwd = "";
      try {
        cwd = readlinkSync(`/proc/${pid}/cwd`);
      } catch {
        // not ours to read
      }
      if (cmdline.includes(dir) || cwd.startsWith(dir)) found.push(`${pid} ${cmdline}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

/** Every port the printed config names (proxy, admin, registry, Redis). */
function portsOf(config: string): number[] {
  return [...config.matchAll(/127\.0\.0\.1:(\d+)/g)].map((m) => Number(m[1]));
}

async function expectNothingLeft(config: string): Promise<void> {
  expect(readdirSync(tmp).filter((name) => name.startsWith("pullgate-demo-"))).toEqual([]);
  expect(processesUnder(tmp)).toEqual([]);
  const ports = portsOf(config);
  expect(ports.length).toBeGreaterThanOrEqual(3);
  for (const port of ports) expect(await isPortOpen(port)).toBe(false);
}

describe("pullgate demo", () => {
  it("pulls the signed image, denies the unsigned one (NO_SIGNATURE), prints its config, leaves nothing behind", async () => {
    const res = await run(process.execPath, [BIN, "demo"], { env: demoEnv(), timeoutMs: 60_000 });
    expect(res.stderr).toBe("");
    expect(res.code).toBe(0);
    expect(res.stdout).toMatch(
      /✔ demo\/signed:v1 pulled: signed by key 'demo' \(fingerprint sha256:[0-9a-f]{12}…\)/,
    );
    expect(res.stdout).toMatch(
      /✘ demo\/unsigned:v1 denied \(NO_SIGNATURE\): project "demo" admits only signed images: demo\/unsigned@sha256:[0-9a-f]{64} has no signature/,
    );
    expect(res.stdout).toMatch(
      /POST \/admin\/v1\/verify .*: allow via signature \(signatures: verified by key 'demo'\)/,
    );
    // The next step works: the registry this config points at is gone, so the demo points at --keep
    // and at the README's walk-through for the user's own registry and key.
    expect(res.stdout).toContain(
      'Next: npx pullgate demo --keep to try it; your own registry and key: README "Sign an image for pullgate"',
    );
    expect(res.stdout).not.toContain("Save it as pullgate.yaml and run it");
    expect(res.stdout).not.toContain("\x1b["); // no color when stdout is not a terminal
    const lines = res.stdout.trimEnd().split("\n");
    // One screen: 30 lines, plus the key's `transparencyLog: optional` (the demo signs without Rekor).
    expect(lines.length).toBeLessThanOrEqual(31);

    const text = printedConfig(res.stdout);
    // With Redis the printed config takes its HMAC key from PULLGATE_REDIS_HMAC_KEY (never printed).
    const config = parseConfig(text, {
      source: "printed",
      baseDir: tmp,
      env: { PULLGATE_REDIS_HMAC_KEY: "k".repeat(32) },
    });
    expect(config.projects.demo?.mode).toBe("enforce");
    expect(config.projects.demo?.keys.map((k) => k.name)).toEqual(["demo"]);
    expect(config.admin.token).toBeUndefined(); // the demo's token is not printed
    await expectNothingLeft(text);
  });

  it("--keep serves until Ctrl-C, then stops everything and exits 0", async () => {
    const child = spawn(process.execPath, [BIN, "demo", "--keep"], {
      env: demoEnv(),
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
    });
    const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
    try {
      for (let i = 0; i < 300 && !stdout.includes("Kept running"); i++) {
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(stdout).toContain("Kept running until Ctrl-C");
      await new Promise((r) => setTimeout(r, 200)); // the rest of the block
      const proxy = /pullgate {2}(127\.0\.0\.1:\d+)/.exec(stdout)?.[1];
      expect(proxy).toBeDefined();
      const denied = await run("skopeo", [
        "--insecure-policy",
        "inspect",
        "--tls-verify=false",
        "--no-creds",
        `docker://${proxy}/demo/unsigned:v1`,
      ]);
      expect(denied.code).not.toBe(0);
      expect(denied.stderr).toContain("has no signature");
      expect(processesUnder(tmp).some((p) => p.includes("docker-registry"))).toBe(true);
    } finally {
      child.kill("SIGINT");
    }
    expect(await exited).toBe(0);
    expect(stdout).toContain("SIGINT: stopping everything the demo started");
    await expectNothingLeft(printedConfig(stdout));
  });
});
