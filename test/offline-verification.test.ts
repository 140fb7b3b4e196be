import { writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { findOnPath, run } from "../src/local/index.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { FIXTURES, VECTORS } from "./support/vectors.ts";

// Verification needs no network: keyless signers and Rekor entries are checked against the trusted
// root on disk, never fetched. Proved in a process that cannot open a socket (a network namespace
// of its own, with no interface up), against a control run of the same script outside it.

const SCRIPT = join(import.meta.dirname, "support", "offline-verifier.ts");
let work: string;
let config: string;
let listener: Server;
let port: number;

beforeAll(async () => {
  work = await makeTempDir("offline-verify");
  config = join(work, "pullgate.yaml");
  await writeFile(
    config,
    `upstreams:
  - name: local
    url: "http://127.0.0.1:9"
projects:
  keyless:
    mode: enforce
    keyless:
      - name: mitr
        issuer: https://github.com/login/oauth
        subject: mitr@redhat.com
  key-with-log:
    mode: enforce
    keys:
      - name: cosign2
        path: ${join(VECTORS, FIXTURES, "cosign2.pub")}
        transparencyLog: required
`,
  );
  listener = createServer((socket) => socket.destroy());
  await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", resolve));
  port = (listener.address() as AddressInfo).port;
});
afterAll(async () => {
  await new Promise<void>((resolve) => listener.close(() => resolve()));
  if (work) await removeDir(work);
});

async function verifier(isolated: boolean) {
  const args = [process.execPath, SCRIPT, config, String(port)];
  const unshare = findOnPath("unshare");
  if (isolated && !unshare)
    throw new Error("unshare (util-linux) is needed to run a process without network");
  const res = isolated
    ? await run(unshare as string, ["--net", ...args], { timeoutMs: 60_000 })
    : await run(args[0] as string, args.slice(1), { timeoutMs: 60_000 });
  expect(res.stderr).toBe("");
  expect(res.code).toBe(0);
  return JSON.parse(res.stdout) as {
    probes: Record<string, string>;
    verdicts: Record<string, { status: string; signer?: string; reason?: string; logEntry?: string }>;
  };
}

describe("verification without network", () => {
  it("verifies keyless and key-with-Rekor signatures in a process that cannot open a socket", async () => {
    const { probes, verdicts } = await verifier(true);
    // The sandbox is real: not even loopback connects, no name resolves, fetch fails.
    expect(probes.loopback).toBe("ENETUNREACH");
    expect(probes.dns).not.toBe("resolved");
    expect(probes.fetch).not.toBe("fetched");
    // The built-in public-good root: certificate chain, SCT, SET, identity; the key's SET.
    expect(verdicts["keyless:dir-img-cosign-fulcio-rekor-valid"]).toMatchObject({
      status: "verified",
      signer: "mitr",
    });
    expect(verdicts["key-with-log:dir-img-cosign-key-rekor-valid"]).toMatchObject({
      status: "verified",
      signer: "cosign2",
    });
    expect(verdicts["keyless:dir-img-cosign-key-rekor-valid"]).toMatchObject({
      status: "denied",
      reason: "UNTRUSTED_SIGNATURE",
    });
  });

  it("control: outside the namespace the same script reaches the loopback listener and decides the same", async () => {
    const isolated = await verifier(true);
    const control = await verifier(false);
    expect(control.probes.loopback).toBe("connected");
    expect(control.verdicts).toEqual(isolated.verdicts);
  });
});
