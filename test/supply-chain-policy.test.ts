import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { COSIGN_SIGN_PREDICATE, IN_TOTO_PAYLOAD_TYPE } from "../src/verify/index.ts";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { createPrivateSigstore, type PrivateSigstore } from "./support/private-sigstore.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import {
  attachBundle,
  attestLegacy,
  dsseEnvelope,
  generateTestKey,
  inTotoStatement,
  makeBundle,
  RegistryWriter,
  signLegacy,
  type TestKey,
} from "./support/signer.ts";
import { skopeoCopy } from "./support/skopeo.ts";

// Supply-chain policies through real pulls (skopeo through pullgate, a real registry): two signers of
// which one is required, signed annotations, a SLSA provenance from CI (keyless) with a condition, and
// a scan attestation from the security team's key; legacy `.sig`/`.att` and Sigstore bundles mixed.
// Every deny reason is reached by a pull, and the dry run shows each attestation and its checks.

const SLSA = "https://slsa.dev/provenance/v1";
const VULN = "https://cosign.sigstore.dev/attestation/vuln/v1";
const CI = "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.0.0";
const GITHUB = "https://token.actions.githubusercontent.com";
const ADMIN_TOKEN = "supply-chain-admin-token";

let work: string;
let registry: Registry;
let pg: TestPullgate;
let writer: RegistryWriter;
let sigstore: PrivateSigstore;
const keys: Record<"release" | "qa" | "security" | "expired" | "current", TestKey> = {
  release: generateTestKey(),
  qa: generateTestKey(),
  security: generateTestKey(),
  expired: generateTestKey(),
  current: generateTestKey(),
};
const images: Record<string, ImageResult> = {};

/** A SLSA v1 provenance as GitHub's generator writes it (abridged), built from `repository`. */
function provenance(repository: string) {
  return {
    buildDefinition: {
      buildType: "https://actions.github.io/buildtypes/workflow/v1",
      externalParameters: {
        workflow: { ref: "refs/tags/v1.0.0", repository, path: ".github/workflows/release.yml" },
      },
      internalParameters: { github: { event_name: "push", repository_id: "1", repository_owner_id: "2" } },
      resolvedDependencies: [
        { uri: `git+${repository}@refs/tags/v1.0.0`, digest: { gitCommit: "a".repeat(40) } },
      ],
    },
    runDetails: { builder: { id: "https://github.com/actions/runner/github-hosted" }, metadata: {} },
  };
}

/** A cosign vuln predicate with `critical` critical findings. */
function scan(critical: number) {
  return {
    invocation: { uri: "https://github.com/acme/security", event_id: "1" },
    scanner: {
      uri: "pkg:github/aquasecurity/trivy@0.50.0",
      version: "0.50.0",
      result: { summary: { critical, high: 3, medium: 10, low: 2 } },
    },
    metadata: { scanStartedOn: "2026-12-01T00:00:00Z", scanFinishedOn: "2026-12-01T00:01:00Z" },
  };
}

const projectOf: Record<string, string> = {};

async function build(name: string, project = "chain"): Promise<ImageResult> {
  const layout = join(work, "layout");
  const image = await createImage({ dir: layout, tag: name, layers: [{ size: 512, seed: `chain-${name}` }] });
  projectOf[name] = project;
  await pushImage({ layoutDir: layout, tag: name, dest: `${registry.host}/${project}/${name}:v1` });
  images[name] = image;
  return image;
}

const repo = (name: string) => `${projectOf[name] ?? "chain"}/${name}`;

/** Legacy `.sig` signatures by `signers`, with `annotations` in the payload. */
async function signBy(name: string, signers: readonly TestKey[], annotations?: Record<string, string>) {
  for (const key of signers)
    await signLegacy({
      writer,
      repository: repo(name),
      digest: images[name]?.manifestDigest as string,
      key,
      ...(annotations ? { annotations } : {}),
    });
}

/** The CI workflow's keyless provenance in the legacy `.att` layout. */
async function provenanceLegacy(name: string, repository: string) {
  const image = images[name] as ImageResult;
  const statement = inTotoStatement({
    digest: image.manifestDigest,
    predicateType: SLSA,
    predicate: provenance(repository),
  });
  const { envelope, annotations } = await sigstore.attestKeylessLegacy(statement, {
    subject: CI,
    issuer: GITHUB,
  });
  await attestLegacy({
    writer,
    repository: repo(name),
    digest: image.manifestDigest,
    predicateType: SLSA,
    envelope,
    annotations,
  });
}

/** The CI workflow's keyless provenance as a Sigstore bundle referrer. */
async function provenanceBundle(name: string, repository: string) {
  const image = images[name] as ImageResult;
  const statement = inTotoStatement({
    digest: image.manifestDigest,
    predicateType: SLSA,
    predicate: provenance(repository),
    statementType: "https://in-toto.io/Statement/v1",
  });
  const bundle = await sigstore.signKeylessBundle(
    statement,
    IN_TOTO_PAYLOAD_TYPE,
    { subject: CI, issuer: GITHUB },
    "v0.3",
  );
  await attach(name, Buffer.from(bundle), SLSA);
}

/** A scan attestation signed with `key`, as a bundle referrer (`bundle`) or in the legacy `.att`. */
async function scanBy(name: string, key: TestKey, critical: number, form: "bundle" | "legacy") {
  const image = images[name] as ImageResult;
  if (form === "bundle") {
    await attach(
      name,
      makeBundle({ digest: image.manifestDigest, key, predicateType: VULN, predicate: scan(critical) }),
      VULN,
    );
    return;
  }
  const statement = inTotoStatement({
    digest: image.manifestDigest,
    predicateType: VULN,
    predicate: scan(critical),
  });
  await attestLegacy({
    writer,
    repository: repo(name),
    digest: image.manifestDigest,
    predicateType: VULN,
    envelope: dsseEnvelope(statement, key),
  });
}

/** Signatures by `signers` as Sigstore bundles (cosign v3), with `annotations` on the statement subject. */
async function signBundlesBy(name: string, signers: readonly TestKey[], annotations: Record<string, string>) {
  const image = images[name] as ImageResult;
  for (const key of signers)
    await attach(name, makeBundle({ digest: image.manifestDigest, key, annotations }), COSIGN_SIGN_PREDICATE);
}

async function attach(name: string, bundle: Buffer, predicateType: string) {
  const image = images[name] as ImageResult;
  await attachBundle({
    writer,
    repository: repo(name),
    digest: image.manifestDigest,
    subjectMediaType: image.manifestMediaType,
    subjectSize: image.manifestBytes.length,
    bundle,
    predicateType,
  });
}

const PROD = { project: "prod" };
const APP = "https://github.com/acme/app";

beforeAll(async () => {
  work = await makeTempDir("supply-chain");
  registry = await startRegistry();
  writer = new RegistryWriter(registry.url);
  sigstore = await createPrivateSigstore();
  writeFileSync(join(work, "private.json"), sigstore.trustedRootJson);

  // Everything the policy asks: release + qa (annotated), CI provenance (legacy .att), security scan (bundle).
  await build("good");
  await signBy("good", [keys.release, keys.qa], PROD);
  await provenanceLegacy("good", APP);
  await scanBy("good", keys.security, 0, "bundle");
  // The same in the other formats: signatures and provenance as bundles, the scan in a legacy .att.
  await build("bundled");
  await signBundlesBy("bundled", [keys.release, keys.qa], PROD);
  await provenanceBundle("bundled", APP);
  await scanBy("bundled", keys.security, 0, "legacy");
  // Provenance from another repository: found, verified, condition false.
  await build("forked");
  await signBy("forked", [keys.release, keys.qa], PROD);
  await provenanceLegacy("forked", "https://github.com/mallory/app");
  await scanBy("forked", keys.security, 0, "bundle");
  // A scan with critical findings.
  await build("critical");
  await signBy("critical", [keys.release, keys.qa], PROD);
  await provenanceLegacy("critical", APP);
  await scanBy("critical", keys.security, 2, "bundle");
  // No scan at all; a scan signed by qa (trusted, but not for scans).
  await build("unscanned");
  await signBy("unscanned", [keys.release, keys.qa], PROD);
  await provenanceLegacy("unscanned", APP);
  await build("qa-scanned");
  await signBy("qa-scanned", [keys.release, keys.qa], PROD);
  await provenanceLegacy("qa-scanned", APP);
  await scanBy("qa-scanned", keys.qa, 0, "bundle");
  // One signer of the two; two signers without the required one.
  await build("one-signer");
  await signBy("one-signer", [keys.release], PROD);
  await provenanceLegacy("one-signer", APP);
  await scanBy("one-signer", keys.security, 0, "bundle");
  await build("no-release");
  await signBy("no-release", [keys.qa, keys.security], PROD);
  await provenanceLegacy("no-release", APP);
  await scanBy("no-release", keys.security, 0, "bundle");
  // Signed without the annotation, and with another value.
  await build("unannotated");
  await signBy("unannotated", [keys.release, keys.qa]);
  await build("staging");
  await signBy("staging", [keys.release, keys.qa], { project: "staging" });
  // Keys with validity windows (no log entry: judged against now).
  await build("expired-key", "window");
  await signBy("expired-key", [keys.expired]);
  await build("current-key", "window");
  await signBy("current-key", [keys.current]);

  const pem = (k: TestKey) => JSON.stringify(k.publicKeyPem);
  const optionalKey = (name: keyof typeof keys) =>
    `{ name: ${name}, pem: ${pem(keys[name])}, transparencyLog: optional }`;
  const year = new Date().getUTCFullYear();
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"`,
    [
      "trustedRoots:",
      `  private: { path: ${JSON.stringify(join(work, "private.json"))} }`,
      "projects:",
      "  chain:",
      "    mode: enforce",
      `    keys: [${optionalKey("release")}, ${optionalKey("qa")}, ${optionalKey("security")}]`,
      `    keyless: [{ name: ci, issuer: "${GITHUB}", subjectRegExp: "https://github\\\\.com/acme/app/\\\\.github/workflows/release\\\\.yml@refs/tags/v.*", trustedRoot: private }]`,
      "    threshold: 2",
      "    requiredSigners: [release]",
      "    annotations: { project: prod }",
      "    attestations:",
      "      - name: provenance",
      `        predicateType: ${SLSA}`,
      "        signers: [ci]",
      `        condition: 'predicate.buildDefinition.externalParameters.workflow.repository == "${APP}"'`,
      "      - name: scan",
      `        predicateType: ${VULN}`,
      "        signers: [security]",
      "        condition: 'predicate.scanner.result.summary.critical == 0'",
      "  window:",
      "    mode: enforce",
      "    keys:",
      `      - { name: old, pem: ${pem(keys.expired)}, transparencyLog: optional, notBefore: "${year - 2}-01-01T00:00:00Z", notAfter: "${year - 1}-01-01T00:00:00Z" }`,
      `      - { name: now, pem: ${pem(keys.current)}, transparencyLog: optional, notBefore: "${year - 1}-01-01T00:00:00Z", notAfter: "${year + 1}-12-31T23:59:59Z" }`,
      "",
    ].join("\n"),
    { adminToken: ADMIN_TOKEN },
  );
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

function copy(repository: string) {
  return skopeoCopy(pg.host, repository, work);
}

async function expectDenied(name: string, reason: string, ...words: string[]) {
  const r = await copy(repo(name));
  expect(r.code, `${name} was copied`).not.toBe(0);
  const audit = pg.logs.filter(
    (l) => l.event === "audit" && l.kind === "manifest-decision" && l.digest === images[name]?.manifestDigest,
  );
  expect(audit.map((l) => l.reason)).toContain(reason);
  for (const w of words) expect(r.stderr).toContain(w);
}

async function dryRun(name: string) {
  const res = await fetch(`${pg.adminUrl}/admin/v1/verify`, {
    method: "POST",
    headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
    body: JSON.stringify({ reference: `${repo(name)}:v1` }),
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    outcome: string;
    reason?: string;
    signers?: string[];
    attestations: Array<{
      key?: string;
      predicateType?: string;
      format: string;
      requirements?: Array<{ attestation: string; result: string; detail?: string }>;
    }>;
  };
}

describe("a chain of attestations and two signers, pulled with skopeo", () => {
  it("copies the image that has everything: release + qa annotated, CI provenance (legacy .att), security scan (bundle)", async () => {
    const judged = pg.deps.metrics.workerJudgements.value();
    const r = await copy(repo("good"));
    expect(r.code, r.stderr).toBe(0);
    // One judgement of all the evidence: neither the `.sig` nor the `.att` nor the one bundle could
    // meet the policy alone, so none was judged early (each early judgement re-verifies the keyless
    // provenance).
    expect(pg.deps.metrics.workerJudgements.value() - judged).toBe(1);
  });

  it("copies the same policy met in the other formats: bundle signatures, keyless provenance bundle, legacy .att scan", async () => {
    const r = await copy(repo("bundled"));
    expect(r.code, r.stderr).toBe(0);
  });

  it("ATTESTATION_REJECTED: the provenance names another repository (the message names the attestation and the condition)", async () => {
    await expectDenied(
      "forked",
      "ATTESTATION_REJECTED",
      "attestation provenance",
      "workflow.repository",
      "is false",
    );
  });

  it("ATTESTATION_REJECTED: the scan found critical vulnerabilities", async () => {
    await expectDenied("critical", "ATTESTATION_REJECTED", "attestation scan", "critical == 0");
  });

  it("MISSING_ATTESTATION: no scan, and a scan signed by a signer not allowed for it", async () => {
    await expectDenied("unscanned", "MISSING_ATTESTATION", "attestation scan", "signed by security");
    await expectDenied("qa-scanned", "MISSING_ATTESTATION", "found one signed by qa, not allowed for it");
  });

  it("NOT_ENOUGH_SIGNERS: one signer of two, and two signers without the required one", async () => {
    await expectDenied("one-signer", "NOT_ENOUGH_SIGNERS", "signed by release", "1 of the 2");
    await expectDenied("no-release", "NOT_ENOUGH_SIGNERS", "missing required signer(s): release");
  });

  it("an annotation mismatch makes a signature not count, and the message says which annotation", async () => {
    await expectDenied("unannotated", "UNTRUSTED_SIGNATURE", 'annotation \\"project\\" is missing');
    await expectDenied("staging", "UNTRUSTED_SIGNATURE", '\\"staging\\"', 'requires \\"prod\\"');
  });
});

describe("keys with a validity window", () => {
  it("denies a signature by a key past its notAfter, and copies one by a key within its window", async () => {
    await expectDenied("expired-key", "UNTRUSTED_SIGNATURE", "after the key's notAfter");
    const r = await copy(repo("current-key"));
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("the dry run shows every attestation, its signer and each condition's result", () => {
  it("for an admitted image", async () => {
    const body = await dryRun("good");
    expect(body.outcome).toBe("allow");
    expect(body.signers?.sort()).toEqual(["qa", "release"]);
    const byType = Object.fromEntries(body.attestations.map((a) => [a.predicateType, a]));
    expect(byType[SLSA]).toMatchObject({
      key: "ci",
      format: "cosign-legacy-attestation",
      requirements: [{ attestation: "provenance", result: "met" }],
    });
    expect(byType[VULN]).toMatchObject({
      key: "security",
      format: "sigstore-bundle",
      requirements: [{ attestation: "scan", result: "met" }],
    });
  });

  it("for a rejected and a missing attestation", async () => {
    const forked = await dryRun("forked");
    expect(forked).toMatchObject({ outcome: "deny", reason: "ATTESTATION_REJECTED" });
    const prov = forked.attestations.find((a) => a.predicateType === SLSA);
    expect(prov?.requirements?.[0]).toMatchObject({ attestation: "provenance", result: "rejected" });
    const qa = await dryRun("qa-scanned");
    expect(qa).toMatchObject({ outcome: "deny", reason: "MISSING_ATTESTATION" });
    expect(qa.attestations.find((a) => a.predicateType === VULN)?.requirements?.[0]).toMatchObject({
      attestation: "scan",
      result: "signer-not-allowed",
    });
  });
});
