/**
 * `npm run bench:attestations`: what an attestation check costs on the pull path, in CPU, on one core
 * (judgeSignatures as the enforcer calls it, with compiled requirements; no network):
 *  (a) a key signature alone: a legacy `.sig` layer by the release key, a policy without attestations;
 *  (b) (a) plus one key-signed attestation bundle (a cosign vuln scan by the security key, Sigstore bundle
 *      v0.3 with a DSSE envelope) required with `predicate.scanner.result.summary.critical == 0`;
 *  (c) (b) plus a keyless provenance: the real cosign attestation bundle (test/support/vectors.ts
 *      ATTESTATION_BUNDLE: keyless, cosign's public-good test root, cody@soyland.com /
 *      https://github.com/login/oauth, predicate https://cosign.sigstore.dev/attestation/v1) required with
 *      `predicate.Data.startsWith("{")`. (a)–(c) are about that vector's subject digest;
 *  (d) the CEL evaluation alone (src/verify/attestation-condition.ts, as the judgement runs it): README's
 *      provenance condition on a ~5 KB SLSA v1 predicate, an exists() over its resolved dependencies, and the
 *      scan condition on the scan predicate;
 *  (e) the evidence of bench/scenarios/cold-attested.ts, made the same way (a private Sigstore), and what the
 *      enforcer judges for one cold pull of it: under the signature-only policy the `.sig` (two layers) once;
 *      under the attested policy each format's evidence alone as it arrives (the early admit: the `.sig`, the
 *      referrers' scan bundle, the `.att` with its keyless provenance), then all of it together;
 *  (f) wall time of a judgement through VerificationPool (1 worker thread, as a policy with a keyless identity
 *      is judged): the scan bundle alone (the thread hop's fixed cost) and all of (e)'s evidence.
 * Each case runs ATTESTATION_BENCH_ITERATIONS times (default 1000; CEL cases 10×) after a warm-up of a fifth
 * of that, three rounds; the median round's mean and p99 are printed. Written to
 * bench/results/attestations-<UTC timestamp>.json.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import {
  bundleEvidence,
  dsseEnvelope,
  generateSigningKey,
  inTotoStatement,
  legacySignatureEvidence,
  makeBundle,
  type SigningKey,
  simpleSigningPayload,
} from "../src/local/index.ts";
import { computeDigest } from "../src/oci/index.ts";
import { VerificationPool } from "../src/pull/index.ts";
import {
  type CompiledCondition,
  type ConditionStatement,
  compileCondition,
  evaluateCondition,
} from "../src/verify/attestation-condition.ts";
import {
  type Authority,
  COSIGN_SIGNATURE_ANNOTATION,
  compileRequirements,
  compileSignerIdentity,
  DSSE_ENVELOPE_MEDIA_TYPE,
  judgeSignatures,
  parseTrustedKey,
  parseTrustRoot,
  type Requirements,
  type RequirementsSpec,
  type SignatureEvidence,
  type TrustRoot,
  type Verdict,
} from "../src/verify/index.ts";
import { createPrivateSigstore } from "../test/support/private-sigstore.ts";
import { ATTESTATION_BUNDLE, PGI_ROOT, vectorBytes, vectorText } from "../test/support/vectors.ts";
import { KEYLESS_ISSUER, KEYLESS_SUBJECT } from "./keyless-images.ts";
import {
  APP_REPOSITORY,
  CI_SUBJECT_REGEXP,
  PROVENANCE_CONDITION,
  SCAN_CONDITION,
  SLSA_PROVENANCE,
  slsaProvenance,
  VULN_SCAN,
  vulnScan,
} from "./scenarios/cold-attested.ts";

const ITERATIONS = Number(process.env.ATTESTATION_BENCH_ITERATIONS ?? 1000);
const CEL_ITERATIONS = ITERATIONS * 10;
const COSIGN_ATTESTATION = "https://cosign.sigstore.dev/attestation/v1";
const KEYLESS_CONDITION = 'predicate.Data.startsWith("{")';
const DEPENDENCY_CONDITION = `predicate.buildDefinition.resolvedDependencies.exists(d, d.uri.startsWith("git+${APP_REPOSITORY}@"))`;

type Round = { meanUs: number; p99Us: number };
type Result = Round & { case: string; perSecond: number; rounds: Round[]; iterations: number };

function summarize(times: number[]): Round {
  times.sort((a, b) => a - b);
  return {
    meanUs: times.reduce((a, b) => a + b, 0) / times.length,
    p99Us: times[Math.floor(times.length * 0.99)] ?? 0,
  };
}

const results: Result[] = [];

function report(name: string, rounds: Round[], iterations: number): Result {
  const median = [...rounds].sort((a, b) => a.meanUs - b.meanUs)[1] as Round;
  const perSecond = Math.round(1_000_000 / median.meanUs);
  const result = { case: name, ...median, perSecond, rounds, iterations };
  results.push(result);
  console.log(
    `${name.padEnd(72)} mean ${median.meanUs.toFixed(1).padStart(8)} µs  p99 ${median.p99Us.toFixed(1).padStart(8)} µs  ${perSecond} /s`,
  );
  return result;
}

/** `run` `iterations` times after a warm-up, three rounds, timed one call at a time. */
function bench(name: string, run: () => void, iterations = ITERATIONS): Result {
  for (let i = 0; i < Math.ceil(iterations / 5); i++) run();
  const rounds: Round[] = [];
  for (let r = 0; r < 3; r++) {
    const times: number[] = new Array(iterations);
    for (let i = 0; i < iterations; i++) {
      const t0 = process.hrtime.bigint();
      run();
      times[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    rounds.push(summarize(times));
  }
  return report(name, rounds, iterations);
}

async function benchAsync(name: string, run: () => Promise<void>, iterations = ITERATIONS): Promise<Result> {
  for (let i = 0; i < Math.ceil(iterations / 5); i++) await run();
  const rounds: Round[] = [];
  for (let r = 0; r < 3; r++) {
    const times: number[] = new Array(iterations);
    for (let i = 0; i < iterations; i++) {
      const t0 = process.hrtime.bigint();
      await run();
      times[i] = Number(process.hrtime.bigint() - t0) / 1000;
    }
    rounds.push(summarize(times));
  }
  return report(name, rounds, iterations);
}

function requirements(spec: Partial<RequirementsSpec>): Requirements {
  const r = compileRequirements({
    threshold: 1,
    requiredSigners: [],
    annotations: {},
    attestations: [],
    ...spec,
  });
  if ("problems" in r) throw new Error(r.problems.join("; "));
  return r;
}

function keyAuthority(name: string, key: SigningKey, root: TrustRoot): Authority {
  return {
    kind: "key",
    name,
    key: parseTrustedKey({ name, pem: key.publicKeyPem }),
    transparencyLog: "optional",
    root,
  };
}

/** A `.sig` with one layer per key, all over the same simple-signing payload (as two `cosign sign` make). */
function sigEvidence(digest: string, keys: readonly SigningKey[]): SignatureEvidence {
  return legacySignatureEvidence(
    computeDigest(Buffer.from(`sig ${digest}`)),
    simpleSigningPayload(digest),
    keys,
  );
}

function expectVerdict(name: string, verdict: Verdict, want: string): void {
  const got = verdict.status === "verified" ? "verified" : verdict.reason;
  if (got !== want)
    throw new Error(`${name}: ${got} (${JSON.stringify(verdict).slice(0, 600)}), expected ${want}`);
}

function judgeCase(name: string, input: Parameters<typeof judgeSignatures>[0], want: string): Result {
  const run = () => expectVerdict(name, judgeSignatures(input), want);
  run();
  return bench(name, run);
}

const keys = { release: generateSigningKey(), qa: generateSigningKey(), security: generateSigningKey() };

// (a)–(c): about the subject of cosign's real attestation bundle, under the public-good test root.
const pgi = parseTrustRoot("public-good", vectorText(PGI_ROOT));
const keylessBytes = vectorBytes(ATTESTATION_BUNDLE);
const keylessStatement = JSON.parse(
  Buffer.from(JSON.parse(keylessBytes.toString()).dsseEnvelope.payload, "base64").toString(),
) as { subject: Array<{ digest: { sha256: string } }> };
const subject = `sha256:${keylessStatement.subject[0]?.digest.sha256}`;
const release = keyAuthority("release", keys.release, pgi);
const security = keyAuthority("security", keys.security, pgi);
const cody: Authority = {
  kind: "keyless",
  name: "cody",
  identity: compileSignerIdentity({
    name: "cody",
    issuer: "https://github.com/login/oauth",
    subject: "cody@soyland.com",
  }),
  root: pgi,
};
const sig = sigEvidence(subject, [keys.release]);
const scanBundle = (digest: string, critical: number) =>
  bundleEvidence(
    makeBundle({ digest, key: keys.security, predicateType: VULN_SCAN, predicate: vulnScan(critical) }),
  );
const scanRequirement = {
  name: "scan",
  predicateType: VULN_SCAN,
  signers: ["security"],
  condition: SCAN_CONDITION,
};
const keylessRequirement = {
  name: "provenance",
  predicateType: COSIGN_ATTESTATION,
  signers: ["cody"],
  condition: KEYLESS_CONDITION,
};
const withScan = requirements({ attestations: [scanRequirement] });
const withBoth = requirements({ attestations: [scanRequirement, keylessRequirement] });

// The conditions are evaluated: a scan with critical findings, or a false keyless condition, is rejected.
expectVerdict(
  "scan with 2 critical",
  judgeSignatures({
    digest: subject,
    authorities: [release, security],
    evidence: [sig, scanBundle(subject, 2)],
    requirements: withScan,
  }),
  "ATTESTATION_REJECTED",
);
expectVerdict(
  "keyless condition false",
  judgeSignatures({
    digest: subject,
    authorities: [release, security, cody],
    evidence: [sig, scanBundle(subject, 0), bundleEvidence(keylessBytes)],
    requirements: requirements({
      attestations: [scanRequirement, { ...keylessRequirement, condition: 'predicate.Data == "x"' }],
    }),
  }),
  "ATTESTATION_REJECTED",
);

console.log(`Node ${process.version}, ${ITERATIONS} judgements per round (CEL: ${CEL_ITERATIONS}), 3 rounds`);
const a = judgeCase(
  "(a) key signature alone (legacy .sig, no attestations)",
  { digest: subject, authorities: [release], evidence: [sig], requirements: requirements({}) },
  "verified",
);
const b = judgeCase(
  "(b) + key-signed scan bundle, critical == 0",
  {
    digest: subject,
    authorities: [release, security],
    evidence: [sig, scanBundle(subject, 0)],
    requirements: withScan,
  },
  "verified",
);
const c = judgeCase(
  "(c) + keyless provenance (cosign vector, public-good test root)",
  {
    digest: subject,
    authorities: [release, security, cody],
    evidence: [sig, scanBundle(subject, 0), bundleEvidence(keylessBytes)],
    requirements: withBoth,
  },
  "verified",
);

// (d) CEL alone.
function compiled(source: string): CompiledCondition {
  const r = compileCondition(source);
  if ("problem" in r) throw new Error(r.problem);
  return r;
}
const provenance = slsaProvenance();
const provenanceBytes = Buffer.byteLength(JSON.stringify(provenance));
function celCase(name: string, source: string, statement: ConditionStatement): Result {
  const condition = compiled(source);
  const run = () => {
    const r = evaluateCondition(condition, statement);
    if (!r.ok || !r.value) throw new Error(`${name}: ${JSON.stringify(r)}`);
  };
  run();
  return bench(name, run, CEL_ITERATIONS);
}
const slsaStatement: ConditionStatement = {
  predicateType: SLSA_PROVENANCE,
  predicate: provenance,
  subject: [{ name: "registry.test/repo", digest: { sha256: "a".repeat(64) } }],
};
const celProvenance = celCase(
  `(d) CEL: provenance condition on the SLSA v1 predicate (${provenanceBytes} B)`,
  PROVENANCE_CONDITION,
  slsaStatement,
);
celCase("(d) CEL: exists() over its resolvedDependencies", DEPENDENCY_CONDITION, slsaStatement);
const celScan = celCase("(d) CEL: scan condition on the vuln predicate", SCAN_CONDITION, {
  predicateType: VULN_SCAN,
  predicate: vulnScan(0),
  subject: [{ name: "registry.test/repo", digest: { sha256: "a".repeat(64) } }],
});

// (e) the cold-attested scenario's evidence, made the same way.
const sigstore = await createPrivateSigstore();
const corp = parseTrustRoot("corp", sigstore.trustedRootJson);
const image = computeDigest(Buffer.from("an attested image"));
const statement = inTotoStatement({ digest: image, predicateType: SLSA_PROVENANCE, predicate: provenance });
const { envelope, annotations } = await sigstore.attestKeylessLegacy(statement, {
  subject: KEYLESS_SUBJECT,
  issuer: KEYLESS_ISSUER,
});
const att: SignatureEvidence = {
  format: "cosign-legacy-attestation",
  source: computeDigest(Buffer.from(`att ${image}`)),
  layers: [
    {
      mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
      digest: computeDigest(envelope),
      annotations: { [COSIGN_SIGNATURE_ANNOTATION]: "", predicateType: SLSA_PROVENANCE, ...annotations },
      payload: envelope,
    },
  ],
};
const twoSigs = sigEvidence(image, [keys.release, keys.qa]);
const scan = scanBundle(image, 0);
const corpKeys = [
  keyAuthority("release", keys.release, corp),
  keyAuthority("qa", keys.qa, corp),
  keyAuthority("security", keys.security, corp),
];
const ci: Authority = {
  kind: "keyless",
  name: "ci",
  identity: compileSignerIdentity({ name: "ci", issuer: KEYLESS_ISSUER, subjectRegExp: CI_SUBJECT_REGEXP }),
  root: corp,
};
const attestedSpec: RequirementsSpec = {
  threshold: 2,
  requiredSigners: [],
  annotations: {},
  attestations: [
    { name: "provenance", predicateType: SLSA_PROVENANCE, signers: ["ci"], condition: PROVENANCE_CONDITION },
    scanRequirement,
  ],
};
const attested = requirements(attestedSpec);
const attestedAuthorities = [...corpKeys, ci];
const judgeAttested = (evidence: SignatureEvidence[]) => ({
  digest: image,
  authorities: attestedAuthorities,
  evidence,
  requirements: attested,
});
// A legacy .att layer by a key (not keyless), to tell the keyless verification from the rest.
const keyAtt: SignatureEvidence = {
  format: "cosign-legacy-attestation",
  source: computeDigest(Buffer.from(`key att ${image}`)),
  layers: [
    {
      mediaType: DSSE_ENVELOPE_MEDIA_TYPE,
      digest: computeDigest(dsseEnvelope(statement, keys.qa)),
      annotations: { [COSIGN_SIGNATURE_ANNOTATION]: "", predicateType: SLSA_PROVENANCE },
      payload: dsseEnvelope(statement, keys.qa),
    },
  ],
};
const eSigned = judgeCase(
  "(e) signature-only policy: the .sig (2 layers), threshold 1",
  { digest: image, authorities: corpKeys, evidence: [twoSigs], requirements: requirements({}) },
  "verified",
);
const eSig = judgeCase(
  "(e) attested policy, early: the .sig alone",
  judgeAttested([twoSigs]),
  "MISSING_ATTESTATION",
);
const eScan = judgeCase(
  "(e) attested policy, early: the scan bundle alone",
  judgeAttested([scan]),
  "NO_SIGNATURE",
);
const eAtt = judgeCase(
  "(e) attested policy, early: the .att alone (keyless provenance)",
  judgeAttested([att]),
  "NO_SIGNATURE",
);
judgeCase(
  "(e) for comparison: a key-signed .att alone (no keyless verification)",
  judgeAttested([keyAtt]),
  "NO_SIGNATURE",
);
const eAll = judgeCase(
  "(e) attested policy: everything (.sig + scan bundle + .att)",
  judgeAttested([twoSigs, scan, att]),
  "verified",
);

// (f) through the verification pool (one worker thread), wall time per judgement.
const pool = new VerificationPool({ threads: 1 });
const pooled = async (name: string, evidence: SignatureEvidence[], want: string) =>
  benchAsync(name, async () => expectVerdict(name, await pool.judge(judgeAttested(evidence)), want));
const fScan = await pooled("(f) pool, wall: the scan bundle alone", [scan], "NO_SIGNATURE");
const fAll = await pooled("(f) pool, wall: everything", [twoSigs, scan, att], "verified");
await pool.close();

const perPull = eSig.meanUs + eScan.meanUs + eAtt.meanUs + eAll.meanUs;
const derived = {
  scanBundleAddsUs: b.meanUs - a.meanUs,
  keylessProvenanceAddsUs: c.meanUs - b.meanUs,
  attestedJudgingPerColdPullUs: perPull,
  signedJudgingPerColdPullUs: eSigned.meanUs,
  judgingAddedPerColdPullUs: perPull - eSigned.meanUs,
  // The conditions run once per cold pull: only the judgement of everything gets past the signatures.
  celShareOfAttestedJudgingPerColdPull: (celProvenance.meanUs + celScan.meanUs) / perPull,
  poolHopUs: fScan.meanUs - eScan.meanUs,
  poolWallMinusInProcessAllUs: fAll.meanUs - eAll.meanUs,
};
console.log(
  `(b)−(a): the scan bundle adds ${derived.scanBundleAddsUs.toFixed(0)} µs; (c)−(b): the keyless provenance adds ` +
    `${derived.keylessProvenanceAddsUs.toFixed(0)} µs`,
);
console.log(
  `(e) judging per cold pull: ${(perPull / 1000).toFixed(2)} ms attested (4 judgements) vs ` +
    `${(eSigned.meanUs / 1000).toFixed(2)} ms signature-only: +${(derived.judgingAddedPerColdPullUs / 1000).toFixed(2)} ms; ` +
    `CEL ${(derived.celShareOfAttestedJudgingPerColdPull * 100).toFixed(1)} % of it`,
);
console.log(
  `(f) the pool's hop: ${derived.poolHopUs.toFixed(0)} µs (scan bundle alone); everything: ` +
    `${derived.poolWallMinusInProcessAllUs.toFixed(0)} µs against in process`,
);

const dir = join(import.meta.dirname, "results");
await mkdir(dir, { recursive: true });
const stamp = new Date().toISOString().replace(/[-:]/g, "").replace(/\..*/, "Z");
const file = join(dir, `attestations-${stamp}.json`);
await writeFile(
  file,
  `${JSON.stringify(
    {
      node: process.version,
      iterations: ITERATIONS,
      celIterations: CEL_ITERATIONS,
      provenancePredicateBytes: provenanceBytes,
      conditions: {
        scan: SCAN_CONDITION,
        keyless: KEYLESS_CONDITION,
        provenance: PROVENANCE_CONDITION,
        dependencies: DEPENDENCY_CONDITION,
      },
      results,
      derived,
    },
    null,
    2,
  )}\n`,
);
console.log(`wrote ${file}`);
