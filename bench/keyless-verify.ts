/**
 * `npm run bench:keyless`: what one signature verification costs on the pull path, per kind, on one
 * core (judgeSignatures, as the enforcer calls it, on the real cosign vectors):
 *  - key, no log entry (transparencyLog: optional) — dir-img-cosign-valid;
 *  - key + Rekor SET (transparencyLog: required) — dir-img-cosign-key-rekor-valid;
 *  - keyless: Fulcio chain, SCT, SET, identity — dir-img-cosign-fulcio-rekor-valid.
 * Each is run KEYLESS_BENCH_ITERATIONS times (default 1000) after a 200-iteration warm-up, three rounds;
 * the median round's mean and p99 are printed with verifications per second. Then the resident memory
 * one verification worker thread adds (VerificationPool, 1 thread, 200 keyless judgements). Written to
 * bench/results/keyless-<UTC timestamp>.json. No network: the trusted root is cosign's test root.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { VerificationPool } from "../src/pull/index.ts";
import {
  type Authority,
  compileSignerIdentity,
  judgeSignatures,
  parseTrustRoot,
} from "../src/verify/index.ts";
import { fixtureCase, PGI_ROOT, vectorKey, vectorText } from "../test/support/vectors.ts";

const ITERATIONS = Number(process.env.KEYLESS_BENCH_ITERATIONS ?? 1000);
const root = parseTrustRoot("public-good", vectorText(PGI_ROOT));
const FIXTURES = "containers-image/signature/fixtures";

const cases: Array<{ name: string; fixture: string; authorities: Authority[] }> = [
  {
    name: "key, no log entry (optional)",
    fixture: "dir-img-cosign-valid",
    authorities: [
      { kind: "key", name: "k", key: vectorKey(`${FIXTURES}/cosign.pub`), transparencyLog: "optional", root },
    ],
  },
  {
    name: "key + Rekor SET (required)",
    fixture: "dir-img-cosign-key-rekor-valid",
    authorities: [
      {
        kind: "key",
        name: "k",
        key: vectorKey(`${FIXTURES}/cosign2.pub`),
        transparencyLog: "required",
        root,
      },
    ],
  },
  {
    name: "keyless: chain + SCT + SET + identity",
    fixture: "dir-img-cosign-fulcio-rekor-valid",
    authorities: [
      {
        kind: "keyless",
        name: "mitr",
        identity: compileSignerIdentity({
          name: "mitr",
          issuer: "https://github.com/login/oauth",
          subject: "mitr@redhat.com",
        }),
        root,
      },
    ],
  },
];

function round(run: () => void): { meanUs: number; p99Us: number } {
  const times: number[] = [];
  for (let i = 0; i < ITERATIONS; i++) {
    const t0 = process.hrtime.bigint();
    run();
    times.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  times.sort((a, b) => a - b);
  return {
    meanUs: times.reduce((a, b) => a + b, 0) / times.length,
    p99Us: times[Math.floor(times.length * 0.99)] ?? 0,
  };
}

const results = [];
for (const c of cases) {
  const fixture = fixtureCase(c.fixture);
  const run = () => {
    const verdict = judgeSignatures({
      digest: fixture.digest ?? "",
      authorities: c.authorities,
      evidence: [fixture.evidence],
    });
    if (verdict.status !== "verified") throw new Error(`${c.name}: not verified`);
  };
  for (let i = 0; i < 200; i++) run();
  const rounds = [round(run), round(run), round(run)].sort((a, b) => a.meanUs - b.meanUs);
  const median = rounds[1] as { meanUs: number; p99Us: number };
  const perSecond = Math.round(1_000_000 / median.meanUs);
  results.push({ case: c.name, ...median, verificationsPerSecond: perSecond });
  console.log(
    `${c.name.padEnd(40)} mean ${median.meanUs.toFixed(0).padStart(6)} µs  p99 ${median.p99Us.toFixed(0).padStart(6)} µs  ${perSecond} /s on one core`,
  );
}
// The memory one worker thread adds: its isolate, @sigstore loaded, the root parsed.
const keylessCase = cases[2] as (typeof cases)[number];
const fixture = fixtureCase(keylessCase.fixture);
const rssMb = () => Math.round(process.memoryUsage.rss() / 1e5) / 10;
const beforeMb = rssMb();
const pool = new VerificationPool({ threads: 1 });
for (let i = 0; i < 200; i++) {
  await pool.judge({
    digest: fixture.digest ?? "",
    authorities: keylessCase.authorities,
    evidence: [fixture.evidence],
  });
}
const workerRssMb = Math.round((rssMb() - beforeMb) * 10) / 10;
await pool.close();
console.log(
  `one verification worker thread adds ${workerRssMb} MB of resident memory (200 keyless judgements)`,
);

const dir = join(import.meta.dirname, "results");
await mkdir(dir, { recursive: true });
const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "Z");
await writeFile(
  join(dir, `keyless-${stamp}.json`),
  JSON.stringify({ node: process.version, iterations: ITERATIONS, results, workerRssMb }, null, 2),
);
