import { copyFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { connect } from "node:tls";
import { Agent, fetch as undiciFetch } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { waitFor } from "../src/local/index.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { createTestCa, issueServerCert, type TestCa } from "./support/tls.ts";

// pullgate serving HTTPS itself, and picking up a renewed certificate without a restart.

let work: string;
let ca: TestCa;
let registry: Registry;
let pg: TestPullgate;
let live: { certPath: string; keyPath: string };

beforeAll(async () => {
  work = await makeTempDir("tls-test");
  ca = await createTestCa(work);
  const first = await issueServerCert(ca, "first", ["IP:127.0.0.1", "DNS:localhost"]);
  live = { certPath: join(work, "tls.crt"), keyPath: join(work, "tls.key") };
  await copyFile(first.certPath, live.certPath);
  await copyFile(first.keyPath, live.keyPath);
  registry = await startRegistry();
  pg = await startTestPullgate(`  - name: local\n    url: "${registry.url}"`, "", { tls: live });
}, 60_000);

afterAll(async () => {
  await pg?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

/** The subject CN of the certificate the server presents right now. */
async function presentedCn(): Promise<string> {
  const url = new URL(pg.proxyUrl);
  const caPem = await readFile(ca.caCertPath, "utf8");
  return new Promise((resolve, reject) => {
    const socket = connect(
      { host: url.hostname, port: Number(url.port), ca: caPem, servername: "localhost" },
      () => {
        const cn = socket.getPeerCertificate().subject?.CN;
        socket.end();
        resolve(String(cn));
      },
    );
    socket.on("error", reject);
  });
}

describe("TLS", () => {
  it("serves the registry API over HTTPS with a certificate the client's CA trusts", async () => {
    expect(pg.proxyUrl.startsWith("https://127.0.0.1:")).toBe(true);
    const dispatcher = new Agent({ connect: { ca: await readFile(ca.caCertPath, "utf8") } });
    try {
      const res = await undiciFetch(`${pg.proxyUrl}/v2/`, { dispatcher });
      expect(res.status).toBe(200);
      expect(res.headers.get("docker-distribution-api-version")).toBe("registry/2.0");
    } finally {
      await dispatcher.close();
    }
    // Without the CA the client refuses; plain HTTP on the TLS port gets no registry answer.
    await expect(fetch(`${pg.proxyUrl}/v2/`)).rejects.toThrow();
    await expect(fetch(`${pg.proxyUrl.replace("https:", "http:")}/v2/`)).rejects.toThrow();
  });

  it("reloads a renewed certificate without a restart, and keeps the old one when the new pair is broken", async () => {
    expect(await presentedCn()).toBe("first");
    const second = await issueServerCert(ca, "second", ["IP:127.0.0.1", "DNS:localhost"]);
    await writeFile(live.keyPath, await readFile(second.keyPath));
    await writeFile(live.certPath, await readFile(second.certPath));
    await waitFor(async () => (await presentedCn()) === "second", {
      timeoutMs: 10_000,
      description: "the new certificate",
    });
    expect(pg.logs.some((r) => r.event === "tls reloaded" && String(r.subject).includes("second"))).toBe(
      true,
    );
    // A certificate that does not match the key on disk: refused, "second" keeps serving.
    const third = await issueServerCert(ca, "third", ["IP:127.0.0.1"]);
    await writeFile(live.certPath, await readFile(third.certPath));
    await waitFor(() => pg.logs.some((r) => r.event === "tls reload failed"), {
      timeoutMs: 10_000,
      description: "the failed reload to be logged",
    });
    expect(await presentedCn()).toBe("second");
  });
});
