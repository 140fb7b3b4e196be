import { createPublicKey } from "node:crypto";
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type FakeAwsKms, type FakeGcpKms, startFakeAwsKms, startFakeGcpKms } from "./support/fake-kms.ts";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy, type TestKey } from "./support/signer.ts";
import { skopeoCopy } from "./support/skopeo.ts";
import { createTestCa, issueServerCert } from "./support/tls.ts";

// KMS keys end to end: pullgate fetches a project's keys from AWS KMS (through @aws-sdk/client-kms,
// SigV4, HTTPS with a private CA, the `awskms://ENDPOINT/alias/NAME` form) and Cloud KMS (through
// @google-cloud/kms, REST, an external_account credential) served by local fakes of their wire
// protocols, at start; images signed with those keys are copied with skopeo, threshold 2 across both
// clouds. A key the KMS does not have makes its project answer 503 naming the key, even with
// onLookupError: allow.

const ACCESS_KEY_ID = "AKIAPULLGATEPOLICY01";
const SECRET_ACCESS_KEY = "pullgate-policy-test-secret";
const ARN = "arn:aws:kms:eu-west-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab";
const GCP_VERSION = "projects/acme/locations/global/keyRings/ci/cryptoKeys/qa/cryptoKeyVersions/1";
const ENV = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_REGION",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_EC2_METADATA_DISABLED",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "CLOUDSDK_CONFIG",
  "METADATA_SERVER_DETECTION",
] as const;

let work: string;
let registry: Registry;
let pg: TestPullgate;
let aws: FakeAwsKms;
let gcp: FakeGcpKms;
let saved: Record<string, string | undefined>;
const release: TestKey = generateTestKey();
const qa: TestKey = generateTestKey();
const images: Record<string, ImageResult> = {};

async function build(repository: string, signers: readonly TestKey[]) {
  const layout = join(work, "layout");
  const tag = repository.replaceAll("/", "-");
  const image = await createImage({ dir: layout, tag, layers: [{ size: 256, seed: `kms-${tag}` }] });
  await pushImage({ layoutDir: layout, tag, dest: `${registry.host}/${repository}:v1` });
  const writer = new RegistryWriter(registry.url);
  for (const key of signers) await signLegacy({ writer, repository, digest: image.manifestDigest, key });
  images[repository] = image;
}

beforeAll(async () => {
  work = await makeTempDir("kms-policy");
  registry = await startRegistry();
  const ca = await createTestCa(work);
  const cert = await issueServerCert(ca, "kms", ["IP:127.0.0.1", "DNS:localhost"]);
  aws = await startFakeAwsKms({
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    tls: { cert: await readFile(cert.certPath, "utf8"), key: await readFile(cert.keyPath, "utf8") },
  });
  aws.set("alias/release", {
    kind: "key",
    publicKey: createPublicKey(release.publicKeyPem),
    keyArn: ARN,
    keySpec: "ECC_NIST_P256",
    keyUsage: "SIGN_VERIFY",
    signingAlgorithms: ["ECDSA_SHA_256"],
  });
  aws.set("alias/missing", {
    kind: "error",
    status: 400,
    type: "NotFoundException",
    message: "no such alias",
  });
  gcp = await startFakeGcpKms();
  gcp.set(GCP_VERSION, { kind: "key", pem: qa.publicKeyPem, algorithm: "EC_SIGN_P256_SHA256" });

  saved = Object.fromEntries(ENV.map((k) => [k, process.env[k]]));
  process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = SECRET_ACCESS_KEY;
  process.env.AWS_REGION = "eu-west-1";
  process.env.AWS_CONFIG_FILE = join(work, "no-aws-config");
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(work, "no-aws-credentials");
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  process.env.GOOGLE_APPLICATION_CREDENTIALS = await gcp.writeCredentials(work);
  process.env.CLOUDSDK_CONFIG = join(work, "no-gcloud");
  process.env.METADATA_SERVER_DETECTION = "none";

  await build("clouds/both", [release, qa]);
  await build("clouds/aws-only", [release]);
  await build("gone/app", [release]);
  const caFile = join(work, "kms-ca.pem");
  await writeFile(caFile, await readFile(ca.caCertPath, "utf8"));
  const awsKey = (name: string, alias: string) =>
    `{ name: ${name}, kms: "awskms://${aws.endpoint}/${alias}", transparencyLog: optional }`;
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"`,
    [
      "kms:",
      `  awsEndpointCaFile: ${JSON.stringify(caFile)}`,
      `  gcpEndpoint: ${JSON.stringify(gcp.url)}`,
      "projects:",
      "  clouds:",
      "    mode: enforce",
      `    keys: [${awsKey("release", "alias/release")}, { name: qa, kms: "gcpkms://${GCP_VERSION}", transparencyLog: optional }]`,
      "    threshold: 2",
      "  gone:",
      "    mode: enforce",
      "    onLookupError: allow",
      `    keys: [${awsKey("release", "alias/release")}, ${awsKey("retired", "alias/missing")}]`,
      "",
    ].join("\n"),
  );
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  await Promise.all([registry?.stop(), aws?.close(), gcp?.close()]);
  if (saved)
    for (const k of ENV) {
      if (saved[k] === undefined) delete process.env[k];
      else process.env[k] = saved[k];
    }
  if (work) await removeDir(work);
});

function copy(repository: string) {
  return skopeoCopy(pg.host, repository, work);
}

describe("keys held in AWS KMS and Cloud KMS", () => {
  it("were fetched at start, through each SDK, with the standard credential chains", () => {
    expect(aws.requests.some((r) => r.keyId === "alias/release" && r.signatureValid)).toBe(true);
    expect(aws.requests.every((r) => r.accessKeyId === ACCESS_KEY_ID)).toBe(true);
    expect(
      gcp.requests.some((r) => r.name === GCP_VERSION && r.authorization === `Bearer ${gcp.accessToken}`),
    ).toBe(true);
  });

  it("admit an image signed by both (threshold 2 across the two clouds), and deny one signed by one", async () => {
    const ok = await copy("clouds/both");
    expect(ok.code, ok.stderr).toBe(0);
    const one = await copy("clouds/aws-only");
    expect(one.code).not.toBe(0);
    expect(one.stderr).toContain("signed by release: 1 of the 2 distinct signers");
  });

  it("a project with a key the KMS cannot give answers 503 naming the key, even with onLookupError: allow", async () => {
    const r = await copy("gone/app");
    expect(r.code).not.toBe(0);
    expect(r.stderr).toContain("503");
    const res = await fetch(`${pg.proxyUrl}/v2/gone/app/manifests/v1`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    expect(res.status).toBe(503);
    const body = (await res.json()) as {
      errors: Array<{ code: string; message: string; detail: { reason: string } }>;
    };
    expect(body.errors[0]).toMatchObject({
      code: "UNAVAILABLE",
      detail: { reason: "SIGNATURE_UNAVAILABLE" },
    });
    expect(body.errors[0]?.message).toContain(`retired (awskms://${aws.endpoint}/alias/missing)`);
    expect(body.errors[0]?.message).toContain("not found");
  });
});
