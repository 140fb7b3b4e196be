// Test-only script (run by test/offline-verification.test.ts, in a network namespace with no
// interface up): tries to open sockets, then loads a configuration and verifies real signatures
// with its policies, as the pull path does (keyless in a worker thread). Prints one JSON line.
import { lookup } from "node:dns/promises";
import { connect } from "node:net";
import { loadConfig } from "../../src/config/index.ts";
import { policyAuthorities } from "../../src/policy/index.ts";
import { VerificationPool } from "../../src/pull/index.ts";
import { fixtureCase } from "./vectors.ts";

const [configPath, probePort] = process.argv.slice(2);

function connectOutcome(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve("connected");
    });
    socket.once("error", (err: NodeJS.ErrnoException) => resolve(err.code ?? "error"));
  });
}

const probes = {
  loopback: await connectOutcome(Number(probePort)),
  dns: await lookup("tuf-repo-cdn.sigstore.dev").then(
    () => "resolved",
    (err: NodeJS.ErrnoException) => err.code ?? "error",
  ),
  fetch: await fetch("https://tuf-repo-cdn.sigstore.dev/timestamp.json", {
    signal: AbortSignal.timeout(5000),
  }).then(
    () => "fetched",
    (err: Error & { cause?: { code?: string } }) => err.cause?.code ?? err.name,
  ),
};

const config = loadConfig({ path: configPath });
const pool = new VerificationPool({ threads: 1 });
const verdicts: Record<string, unknown> = {};
for (const [project, vector] of [
  ["keyless", "dir-img-cosign-fulcio-rekor-valid"],
  ["key-with-log", "dir-img-cosign-key-rekor-valid"],
  ["keyless", "dir-img-cosign-key-rekor-valid"],
] as const) {
  const policy = config.projects[project];
  if (!policy) throw new Error(`no project ${project}`);
  const { digest, evidence } = fixtureCase(vector);
  const verdict = await pool.judge({
    digest: digest as string,
    authorities: policyAuthorities(policy),
    evidence: [evidence],
  });
  verdicts[`${project}:${vector}`] =
    verdict.status === "verified"
      ? { status: "verified", signer: verdict.key, logEntry: verdict.signatures[0]?.logEntry?.logIndex }
      : { status: "denied", reason: verdict.reason, detail: verdict.detail };
}
await pool.close();
process.stdout.write(`${JSON.stringify({ probes, verdicts })}\n`);
