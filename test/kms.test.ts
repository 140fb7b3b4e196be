import { spawnSync } from "node:child_process";
import { generateKeyPairSync, type KeyObject, randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import {
  createAwsKmsProvider,
  createGcpKmsProvider,
  createKmsProviders,
  KmsError,
  KmsKeyring,
  type KmsKeyState,
  type KmsProvider,
  type KmsPublicKey,
  parseKmsReference,
} from "../src/kms/index.ts";
import { createMemoryLogger } from "../src/telemetry/index.ts";
import { type FakeAwsKms, type FakeGcpKms, startFakeAwsKms, startFakeGcpKms } from "./support/fake-kms.ts";
import { createTestCa, issueServerCert } from "./support/tls.ts";

// Each provider through its real SDK against a local server that speaks the service's wire protocol
// (test/support/fake-kms.ts): AWS KMS JSON 1.1 with SigV4 checked, over HTTPS with a test CA; Cloud
// KMS REST with a bearer token the fake's STS issued to an external_account credential file.

const ACCESS_KEY_ID = "AKIAPULLGATETEST0001";
const SECRET_ACCESS_KEY = "pullgate-test-secret-access-key";
const ACCOUNT = "111122223333";
const KEY_ID = "1234abcd-12ab-34cd-56ef-1234567890ab";
const OTHER_KEY_ID = "0987dcba-09ba-87dc-65fe-0987654321ba";
const ARN = (region: string, id: string) => `arn:aws:kms:${region}:${ACCOUNT}:key/${id}`;
const VERSION = (key: string, n: number) =>
  `projects/acme/locations/global/keyRings/ci/cryptoKeys/${key}/cryptoKeyVersions/${n}`;

const ENV_KEYS = [
  "AWS_ACCESS_KEY_ID",
  "AWS_SECRET_ACCESS_KEY",
  "AWS_SESSION_TOKEN",
  "AWS_REGION",
  "AWS_DEFAULT_REGION",
  "AWS_PROFILE",
  "AWS_CONFIG_FILE",
  "AWS_SHARED_CREDENTIALS_FILE",
  "AWS_EC2_METADATA_DISABLED",
  "AWS_ENDPOINT_URL",
  "AWS_ENDPOINT_URL_KMS",
  "AWS_WEB_IDENTITY_TOKEN_FILE",
  "AWS_ROLE_ARN",
  "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
  "AWS_CONTAINER_CREDENTIALS_FULL_URI",
  "GOOGLE_APPLICATION_CREDENTIALS",
  "GOOGLE_CLOUD_PROJECT",
  "GCLOUD_PROJECT",
  "GOOGLE_CLOUD_QUOTA_PROJECT",
  "GOOGLE_CLOUD_UNIVERSE_DOMAIN",
  "CLOUDSDK_CONFIG",
  "METADATA_SERVER_DETECTION",
] as const;

const spkiPem = (key: KeyObject) => key.export({ type: "spki", format: "pem" }).toString();
const ec = (namedCurve: string) => generateKeyPairSync("ec", { namedCurve });

let dir: string;
let caPem: string;
let awsTls: FakeAwsKms;
let awsPlain: FakeAwsKms;
let gcp: FakeGcpKms;
let gcpCredentials: string;
const keys = {
  p256: ec("P-256"),
  p384: ec("P-384"),
  p521: ec("P-521"),
  rsa: generateKeyPairSync("rsa", { modulusLength: 2048 }),
  rsa3072: generateKeyPairSync("rsa", { modulusLength: 3072 }),
  k256: ec("secp256k1"),
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "pullgate-kms-"));
  const ca = await createTestCa(dir);
  const cert = await issueServerCert(ca, "kms", ["IP:127.0.0.1", "DNS:localhost"]);
  caPem = await readFile(ca.caCertPath, "utf8");
  awsTls = await startFakeAwsKms({
    accessKeyId: ACCESS_KEY_ID,
    secretAccessKey: SECRET_ACCESS_KEY,
    tls: { cert: await readFile(cert.certPath, "utf8"), key: await readFile(cert.keyPath, "utf8") },
  });
  awsPlain = await startFakeAwsKms({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY });
  gcp = await startFakeGcpKms();
  gcpCredentials = await gcp.writeCredentials(dir);
});

afterAll(async () => {
  await Promise.all([awsTls?.close(), awsPlain?.close(), gcp?.close()]);
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

let savedEnv: Record<string, string | undefined>;
const providers: KmsProvider[] = [];

beforeEach(() => {
  savedEnv = Object.fromEntries(ENV_KEYS.map((k) => [k, process.env[k]]));
  for (const k of ENV_KEYS) delete process.env[k];
  // The standard chains, pointed at nothing of this machine's: env credentials only.
  process.env.AWS_ACCESS_KEY_ID = ACCESS_KEY_ID;
  process.env.AWS_SECRET_ACCESS_KEY = SECRET_ACCESS_KEY;
  process.env.AWS_REGION = "eu-west-1";
  process.env.AWS_CONFIG_FILE = join(dir, "no-aws-config");
  process.env.AWS_SHARED_CREDENTIALS_FILE = join(dir, "no-aws-credentials");
  process.env.AWS_EC2_METADATA_DISABLED = "true";
  process.env.GOOGLE_APPLICATION_CREDENTIALS = gcpCredentials;
  process.env.CLOUDSDK_CONFIG = join(dir, "no-gcloud");
  process.env.METADATA_SERVER_DETECTION = "none";
});

afterEach(() => {
  for (const p of providers.splice(0)) p.close();
  for (const k of ENV_KEYS) {
    if (savedEnv[k] === undefined) delete process.env[k];
    else process.env[k] = savedEnv[k];
  }
});

function track<T extends KmsProvider>(provider: T): T {
  providers.push(provider);
  return provider;
}

function fetchKey(
  provider: KmsProvider,
  uri: string,
  signal = AbortSignal.timeout(20_000),
): Promise<KmsPublicKey> {
  const ref = parseKmsReference(uri);
  if (typeof ref === "string") throw new Error(ref);
  return provider.fetchPublicKey(ref, signal);
}

async function failure(work: Promise<unknown>): Promise<KmsError> {
  try {
    await work;
  } catch (err) {
    if (err instanceof KmsError) return err;
    throw err;
  }
  throw new Error("expected a KmsError");
}

const awsKey = (publicKey: KeyObject, keySpec: string, keyArn = ARN("eu-west-1", KEY_ID)) =>
  ({
    kind: "key",
    publicKey,
    keyArn,
    keySpec,
    keyUsage: "SIGN_VERIFY",
    signingAlgorithms: keySpec.startsWith("RSA")
      ? ["RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PSS_SHA_256"]
      : [keySpec === "ECC_NIST_P384" ? "ECDSA_SHA_384" : "ECDSA_SHA_256"],
  }) as const;

describe("AWS KMS through @aws-sdk/client-kms (JSON 1.1, SigV4, HTTPS endpoint)", () => {
  const awsUri = (key: string) => `awskms://${awsTls.endpoint}/${key}`;

  it("resolves a key id, an alias, a key ARN and an alias ARN to the key's SPKI, signed with the env credentials", async () => {
    const cases = [
      { key: KEY_ID, publicKey: keys.p256.publicKey, spec: "ECC_NIST_P256", region: "eu-west-1" },
      { key: "alias/release", publicKey: keys.p384.publicKey, spec: "ECC_NIST_P384", region: "eu-west-1" },
      { key: ARN("us-east-2", KEY_ID), publicKey: keys.rsa.publicKey, spec: "RSA_2048", region: "us-east-2" },
      {
        key: `arn:aws:kms:ap-south-1:${ACCOUNT}:alias/qa/team`,
        publicKey: keys.p521.publicKey,
        spec: "ECC_NIST_P521",
        region: "ap-south-1",
      },
    ];
    const provider = track(createAwsKmsProvider({ endpointCa: caPem, timeoutMs: 5_000 }));
    for (const c of cases) {
      const keyArn = c.key.startsWith("arn:") && c.key.includes(":key/") ? c.key : ARN(c.region, KEY_ID);
      awsTls.set(c.key, awsKey(c.publicKey, c.spec, keyArn));
      const got = await fetchKey(provider, awsUri(c.key));
      expect(got.pem).toBe(spkiPem(c.publicKey));
      expect(got.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
      expect(got.signingAlgorithms.length).toBeGreaterThan(0);
      const request = awsTls.requests.at(-1);
      expect(request).toEqual({
        target: "TrentService.GetPublicKey",
        keyId: c.key,
        accessKeyId: ACCESS_KEY_ID,
        region: c.region,
        service: "kms",
        signatureValid: true,
        host: awsTls.endpoint,
      });
    }
  });

  it("speaks HTTPS to the ENDPOINT and checks its certificate: without the test CA it is not reachable", async () => {
    awsTls.set(KEY_ID, awsKey(keys.p256.publicKey, "ECC_NIST_P256"));
    const err = await failure(fetchKey(track(createAwsKmsProvider({ timeoutMs: 5_000 })), awsUri(KEY_ID)));
    expect(err.code).toBe("UNREACHABLE");
    expect(err.message).toMatch(/^awskms:\/\/127\.0\.0\.1:\d+\/1234abcd-.*: not reachable \([A-Z_]+\)$/);
  });

  it("without an ENDPOINT uses the SDK's endpoint chain (AWS_ENDPOINT_URL_KMS here) and an ARN's region", async () => {
    process.env.AWS_ENDPOINT_URL_KMS = awsPlain.url;
    delete process.env.AWS_REGION;
    awsPlain.set(
      ARN("us-west-2", KEY_ID),
      awsKey(keys.p256.publicKey, "ECC_NIST_P256", ARN("us-west-2", KEY_ID)),
    );
    const got = await fetchKey(track(createAwsKmsProvider()), `awskms:///${ARN("us-west-2", KEY_ID)}`);
    expect(got.pem).toBe(spkiPem(keys.p256.publicKey));
    expect(awsPlain.requests.at(-1)).toMatchObject({ region: "us-west-2", signatureValid: true });
  });

  it("says which region is missing when neither the reference nor the chain has one", async () => {
    delete process.env.AWS_REGION;
    const err = await failure(
      fetchKey(track(createAwsKmsProvider({ endpointCa: caPem })), awsUri("alias/release")),
    );
    expect(err.code).toBe("NO_REGION");
  });

  it("an unknown key is NOT_FOUND; denied access is PERMISSION_DENIED, without the server's message", async () => {
    const provider = track(createAwsKmsProvider({ endpointCa: caPem }));
    const notFound = await failure(fetchKey(provider, awsUri("alias/does-not-exist")));
    expect(notFound.code).toBe("NOT_FOUND");
    expect(notFound.message).toBe(`${awsUri("alias/does-not-exist")}: not found (NotFoundException)`);

    awsTls.set("alias/denied", {
      kind: "error",
      status: 400,
      type: "AccessDeniedException",
      message: `User: arn:aws:iam::${ACCOUNT}:user/ci is not authorized to perform: kms:GetPublicKey`,
    });
    const denied = await failure(fetchKey(provider, awsUri("alias/denied")));
    expect(denied.code).toBe("PERMISSION_DENIED");
    expect(denied.message).toBe(`${awsUri("alias/denied")}: permission denied (AccessDeniedException)`);
    expect(denied.message).not.toContain(ACCOUNT);
  });

  it("a wrong secret key is UNAUTHENTICATED (the fake checks the SigV4 signature), and the secret is never in the words", async () => {
    awsTls.set(KEY_ID, awsKey(keys.p256.publicKey, "ECC_NIST_P256"));
    process.env.AWS_SECRET_ACCESS_KEY = "not-the-secret";
    const err = await failure(fetchKey(track(createAwsKmsProvider({ endpointCa: caPem })), awsUri(KEY_ID)));
    expect(err.code).toBe("UNAUTHENTICATED");
    expect(err.message).toBe(`${awsUri(KEY_ID)}: credentials rejected (InvalidSignatureException)`);
    expect(awsTls.requests.at(-1)).toMatchObject({ accessKeyId: ACCESS_KEY_ID, signatureValid: false });
  });

  it("no credentials anywhere in the chain is NO_CREDENTIALS", async () => {
    delete process.env.AWS_ACCESS_KEY_ID;
    delete process.env.AWS_SECRET_ACCESS_KEY;
    const err = await failure(fetchKey(track(createAwsKmsProvider({ endpointCa: caPem })), awsUri(KEY_ID)));
    expect(err.code).toBe("NO_CREDENTIALS");
  });

  it("a server that never answers is a TIMEOUT within the provider's timeout", async () => {
    awsTls.set("alias/silent", { kind: "hang" });
    const started = performance.now();
    const err = await failure(
      fetchKey(track(createAwsKmsProvider({ endpointCa: caPem, timeoutMs: 500 })), awsUri("alias/silent")),
    );
    expect(err.code).toBe("TIMEOUT");
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("an endpoint nobody listens on is UNREACHABLE (ECONNREFUSED)", async () => {
    const closed = await startFakeAwsKms({ accessKeyId: ACCESS_KEY_ID, secretAccessKey: SECRET_ACCESS_KEY });
    await closed.close();
    const err = await failure(
      fetchKey(track(createAwsKmsProvider()), `awskms://${closed.endpoint}/${KEY_ID}`),
    );
    expect(err.code).toBe("UNREACHABLE");
    expect(err.message).toBe(`awskms://${closed.endpoint}/${KEY_ID}: not reachable (ECONNREFUSED)`);
  });

  it("refuses an encryption key, a key of a kind verify/ refuses, an answer that is not a key, and another key's", async () => {
    const provider = track(createAwsKmsProvider({ endpointCa: caPem }));
    awsTls.set("alias/encrypt", {
      ...awsKey(keys.rsa.publicKey, "RSA_2048"),
      keyUsage: "ENCRYPT_DECRYPT",
    });
    const encrypt = await failure(fetchKey(provider, awsUri("alias/encrypt")));
    expect(encrypt.code).toBe("WRONG_KEY");
    expect(encrypt.message).toBe(`${awsUri("alias/encrypt")}: key usage is ENCRYPT_DECRYPT, not SIGN_VERIFY`);

    awsTls.set("alias/secp256k1", awsKey(keys.k256.publicKey, "ECC_SECG_P256K1"));
    expect((await failure(fetchKey(provider, awsUri("alias/secp256k1")))).code).toBe("WRONG_KEY");

    awsTls.set("alias/garbage", {
      ...awsKey(keys.p256.publicKey, "ECC_NIST_P256"),
      rawPublicKeyBase64: randomBytes(64).toString("base64"),
    });
    expect((await failure(fetchKey(provider, awsUri("alias/garbage")))).code).toBe("BAD_RESPONSE");

    awsTls.set(KEY_ID, awsKey(keys.p256.publicKey, "ECC_NIST_P256", ARN("eu-west-1", OTHER_KEY_ID)));
    expect((await failure(fetchKey(provider, awsUri(KEY_ID)))).code).toBe("BAD_RESPONSE");
  });

  it("throttling and 5xx are UNAVAILABLE", async () => {
    const provider = track(createAwsKmsProvider({ endpointCa: caPem }));
    awsTls.set("alias/throttled", {
      kind: "error",
      status: 400,
      type: "ThrottlingException",
      message: "Rate exceeded",
    });
    expect((await failure(fetchKey(provider, awsUri("alias/throttled")))).code).toBe("UNAVAILABLE");
    awsTls.set("alias/internal", {
      kind: "error",
      status: 500,
      type: "KMSInternalException",
      message: "oops",
    });
    expect((await failure(fetchKey(provider, awsUri("alias/internal")))).code).toBe("UNAVAILABLE");
  });
});

describe("Google Cloud KMS through @google-cloud/kms (REST, external_account credentials)", () => {
  const gcpProvider = (timeoutMs = 5_000) =>
    track(createGcpKmsProvider({ apiEndpoint: gcp.host, port: gcp.port, protocol: "http", timeoutMs }));
  const gcpUri = (name: string) => `gcpkms://${name}`;

  it("resolves P-256, P-384 and RSA key versions to their SPKI with a token from the credential file's token_url", async () => {
    const cases = [
      { name: VERSION("p256", 1), key: keys.p256.publicKey, algorithm: "EC_SIGN_P256_SHA256" },
      { name: VERSION("p384", 3), key: keys.p384.publicKey, algorithm: "EC_SIGN_P384_SHA384" },
      { name: VERSION("rsa", 2), key: keys.rsa3072.publicKey, algorithm: "RSA_SIGN_PKCS1_3072_SHA256" },
    ];
    const provider = gcpProvider();
    const exchangesBefore = gcp.tokenRequests.length;
    for (const c of cases) {
      gcp.set(c.name, { kind: "key", pem: spkiPem(c.key), algorithm: c.algorithm });
      const got = await fetchKey(provider, gcpUri(c.name));
      expect(got.pem).toBe(spkiPem(c.key));
      expect(got.signingAlgorithms).toEqual([c.algorithm]);
      expect(gcp.requests.at(-1)).toEqual({
        method: "GET",
        path: `/v1/${c.name}/publicKey`,
        authorization: `Bearer ${gcp.accessToken}`,
        name: c.name,
      });
    }
    // One token exchange for the three calls (the auth library caches the token).
    expect(gcp.tokenRequests.length - exchangesBefore).toBe(1);
  });

  it("accepts cosign's older …/versions/N spelling, and an answer without a CRC32C", async () => {
    gcp.set(VERSION("legacy", 7), {
      kind: "key",
      pem: spkiPem(keys.p256.publicKey),
      algorithm: "EC_SIGN_P256_SHA256",
      pemCrc32c: null,
    });
    const got = await fetchKey(
      gcpProvider(),
      "gcpkms://projects/acme/locations/global/keyRings/ci/cryptoKeys/legacy/versions/7",
    );
    expect(got.pem).toBe(spkiPem(keys.p256.publicKey));
    expect(gcp.requests.at(-1)?.name).toBe(VERSION("legacy", 7));
  });

  it("NOT_FOUND, PERMISSION_DENIED and a destroyed version (FAILED_PRECONDITION) in words, without the server's message", async () => {
    const provider = gcpProvider();
    const notFound = await failure(fetchKey(provider, gcpUri(VERSION("nope", 1))));
    expect(notFound.code).toBe("NOT_FOUND");
    expect(notFound.message).toBe(`${gcpUri(VERSION("nope", 1))}: not found (NOT_FOUND)`);

    gcp.set(VERSION("denied", 1), {
      kind: "error",
      httpStatus: 403,
      status: "PERMISSION_DENIED",
      message:
        "Permission 'cloudkms.cryptoKeyVersions.viewPublicKey' denied for principal://iam.googleapis.com/x",
    });
    const denied = await failure(fetchKey(provider, gcpUri(VERSION("denied", 1))));
    expect(denied.code).toBe("PERMISSION_DENIED");
    expect(denied.message).toBe(`${gcpUri(VERSION("denied", 1))}: permission denied (PERMISSION_DENIED)`);

    gcp.set(VERSION("destroyed", 1), {
      kind: "error",
      httpStatus: 400,
      status: "FAILED_PRECONDITION",
      message: "is not enabled, current state is: DESTROYED.",
    });
    expect((await failure(fetchKey(provider, gcpUri(VERSION("destroyed", 1))))).code).toBe("KEY_STATE");
  });

  it("a server that never answers is a TIMEOUT within the provider's timeout", async () => {
    gcp.set(VERSION("silent", 1), { kind: "hang" });
    const started = performance.now();
    const err = await failure(fetchKey(gcpProvider(500), gcpUri(VERSION("silent", 1))));
    expect(err.code).toBe("TIMEOUT");
    expect(performance.now() - started).toBeLessThan(5_000);
  });

  it("an endpoint nobody listens on is UNREACHABLE (ECONNREFUSED)", async () => {
    const closed = await startFakeGcpKms();
    await closed.close();
    const provider = track(
      createGcpKmsProvider({
        apiEndpoint: closed.host,
        port: closed.port,
        protocol: "http",
        timeoutMs: 5_000,
      }),
    );
    const err = await failure(fetchKey(provider, gcpUri(VERSION("p256", 1))));
    expect(err.code).toBe("UNREACHABLE");
    expect(err.message).toBe(`${gcpUri(VERSION("p256", 1))}: not reachable (ECONNREFUSED)`);
  });

  it("refuses a bad CRC32C, another version's name, a decryption key, and a PEM that is not a public key", async () => {
    const provider = gcpProvider();
    const pem = spkiPem(keys.p256.publicKey);
    gcp.set(VERSION("crc", 1), { kind: "key", pem, algorithm: "EC_SIGN_P256_SHA256", pemCrc32c: 12345 });
    const crc = await failure(fetchKey(provider, gcpUri(VERSION("crc", 1))));
    expect(crc.code).toBe("BAD_RESPONSE");
    expect(crc.message).toContain("CRC32C");

    gcp.set(VERSION("renamed", 1), {
      kind: "key",
      pem,
      algorithm: "EC_SIGN_P256_SHA256",
      name: VERSION("renamed", 2),
    });
    expect((await failure(fetchKey(provider, gcpUri(VERSION("renamed", 1))))).code).toBe("BAD_RESPONSE");

    gcp.set(VERSION("decrypt", 1), {
      kind: "key",
      pem: spkiPem(keys.rsa.publicKey),
      algorithm: "RSA_DECRYPT_OAEP_2048_SHA256",
    });
    const decrypt = await failure(fetchKey(provider, gcpUri(VERSION("decrypt", 1))));
    expect(decrypt.code).toBe("WRONG_KEY");
    expect(decrypt.message).toBe(
      `${gcpUri(VERSION("decrypt", 1))}: not an asymmetric signing key (algorithm RSA_DECRYPT_OAEP_2048_SHA256)`,
    );

    const privatePem = keys.p256.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    gcp.set(VERSION("private", 1), { kind: "key", pem: privatePem, algorithm: "EC_SIGN_P256_SHA256" });
    const priv = await failure(fetchKey(provider, gcpUri(VERSION("private", 1))));
    expect(priv.code).toBe("WRONG_KEY");
    expect(priv.message).not.toContain(privatePem.split("\n")[1] as string);

    gcp.set(VERSION("garbage", 1), {
      kind: "key",
      pem: "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
      algorithm: "EC_SIGN_P256_SHA256",
    });
    expect((await failure(fetchKey(provider, gcpUri(VERSION("garbage", 1))))).code).toBe("BAD_RESPONSE");
  });

  it("missing credentials are NO_CREDENTIALS, with no unhandled rejection from the library", async () => {
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on("unhandledRejection", onUnhandled);
    try {
      process.env.GOOGLE_APPLICATION_CREDENTIALS = join(dir, "missing-credentials.json");
      const provider = gcpProvider();
      for (let i = 0; i < 2; i++) {
        const err = await failure(fetchKey(provider, gcpUri(VERSION("p256", 1))));
        expect(err.code).toBe("NO_CREDENTIALS");
        expect(err.message).toContain("(ENOENT)");
      }
      // Credentials that appear later are picked up (the failed client was dropped).
      process.env.GOOGLE_APPLICATION_CREDENTIALS = gcpCredentials;
      gcp.set(VERSION("p256", 1), {
        kind: "key",
        pem: spkiPem(keys.p256.publicKey),
        algorithm: "EC_SIGN_P256_SHA256",
      });
      expect((await fetchKey(provider, gcpUri(VERSION("p256", 1)))).pem).toBe(spkiPem(keys.p256.publicKey));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(unhandled).toEqual([]);
    } finally {
      process.off("unhandledRejection", onUnhandled);
    }
  });

  it("a token endpoint that refuses the subject token is UNAUTHENTICATED", async () => {
    const badDir = await mkdtemp(join(dir, "bad-token-"));
    const file = await gcp.writeCredentials(badDir);
    await writeFile(join(badDir, "subject-token"), "not-the-subject-token");
    process.env.GOOGLE_APPLICATION_CREDENTIALS = file;
    gcp.set(VERSION("p256", 1), {
      kind: "key",
      pem: spkiPem(keys.p256.publicKey),
      algorithm: "EC_SIGN_P256_SHA256",
    });
    const err = await failure(fetchKey(gcpProvider(), gcpUri(VERSION("p256", 1))));
    expect(err.code).toBe("UNAUTHENTICATED");
    expect(err.message).toBe(
      `${gcpUri(VERSION("p256", 1))}: could not get an access token (HTTP 400 invalid_grant)`,
    );
  });
});

describe("KmsKeyring with both providers", () => {
  it("fetches at start, picks up a re-pointed alias, keeps the last good key through an outage, drops a disabled key", async () => {
    const kms = track(
      createKmsProviders({
        aws: { endpointCa: caPem, timeoutMs: 2_000 },
        gcp: { apiEndpoint: gcp.host, port: gcp.port, protocol: "http", timeoutMs: 2_000 },
      }),
    );
    const logger = createMemoryLogger();
    const keyring = new KmsKeyring({ fetchPublicKey: kms.fetchPublicKey, logger, timeoutMs: 3_000 });
    const awsUri = `awskms://${awsTls.endpoint}/alias/keyring`;
    const gcpUri = `gcpkms://${VERSION("keyring", 1)}`;
    const missingUri = `gcpkms://${VERSION("keyring-missing", 1)}`;
    awsTls.set("alias/keyring", awsKey(keys.p256.publicKey, "ECC_NIST_P256"));
    gcp.set(VERSION("keyring", 1), {
      kind: "key",
      pem: spkiPem(keys.p384.publicKey),
      algorithm: "EC_SIGN_P384_SHA384",
    });
    const changes: Array<[string, KmsKeyState]> = [];
    keyring.onChange((uri, state) => changes.push([uri, state]));
    for (const uri of [awsUri, gcpUri, missingUri]) expect(keyring.track(uri)).toEqual({ state: "pending" });
    try {
      await keyring.start();
      expect(keyring.get(awsUri)).toMatchObject({ state: "ready", pem: spkiPem(keys.p256.publicKey) });
      expect(keyring.get(gcpUri)).toMatchObject({ state: "ready", pem: spkiPem(keys.p384.publicKey) });
      expect(keyring.get(missingUri)).toMatchObject({ state: "failed", code: "NOT_FOUND" });
      expect(changes.map(([uri, s]) => [uri, s.state]).sort()).toEqual(
        [
          [awsUri, "ready"],
          [gcpUri, "ready"],
          [missingUri, "failed"],
        ].sort(),
      );

      // The alias now points at another key: the next refresh picks it up and says so.
      awsTls.set("alias/keyring", awsKey(keys.rsa.publicKey, "RSA_2048"));
      changes.length = 0;
      await keyring.refresh(awsUri);
      expect(keyring.get(awsUri)).toMatchObject({ state: "ready", pem: spkiPem(keys.rsa.publicKey) });
      expect(changes).toEqual([[awsUri, keyring.get(awsUri)]]);

      // An outage: the last good key stays, with the reason; nobody is told of a change.
      gcp.set(VERSION("keyring", 1), {
        kind: "error",
        httpStatus: 503,
        status: "UNAVAILABLE",
        message: "down",
      });
      changes.length = 0;
      await keyring.refresh(gcpUri);
      expect(keyring.get(gcpUri)).toMatchObject({
        state: "ready",
        pem: spkiPem(keys.p384.publicKey),
        refreshProblem: `${gcpUri}: KMS unavailable (UNAVAILABLE)`,
      });
      expect(changes).toEqual([]);
      expect(logger.records).toContainEqual(
        expect.objectContaining({
          level: "warn",
          event: "kms key refresh failed, keeping the last good key",
          uri: gcpUri,
        }),
      );

      // The key is disabled in the KMS: believed at once.
      awsTls.set("alias/keyring", {
        kind: "error",
        status: 400,
        type: "DisabledException",
        message: "disabled",
      });
      await keyring.refresh(awsUri);
      expect(keyring.get(awsUri)).toMatchObject({ state: "failed", code: "KEY_STATE" });
      expect(changes.at(-1)?.[0]).toBe(awsUri);
    } finally {
      keyring.stop();
    }
  });
});

describe("lazy SDK loading", () => {
  it("loads neither SDK until a reference of its kind is fetched (tracking loads none)", () => {
    const script = `
      import { createRequire } from "node:module";
      const kms = await import(${JSON.stringify(new URL("../src/kms/index.ts", import.meta.url).href)});
      const loaded = () => {
        const paths = Object.keys(createRequire(import.meta.url).cache);
        return {
          aws: paths.filter((p) => /@aws-sdk[\\/]client-kms[\\/]/.test(p)).length,
          gcp: paths.filter((p) => /@google-cloud[\\/]kms[\\/]/.test(p)).length,
        };
      };
      const providers = kms.createKmsProviders();
      const keyring = new kms.KmsKeyring({ fetchPublicKey: providers.fetchPublicKey });
      keyring.track("awskms:///alias/x");
      keyring.track("gcpkms://projects/p/locations/l/keyRings/r/cryptoKeys/k/cryptoKeyVersions/1");
      const before = loaded();
      const ref = kms.parseKmsReference("awskms://127.0.0.1:1/alias/x");
      await providers.fetchPublicKey(ref, AbortSignal.timeout(5000)).catch(() => {});
      console.log(JSON.stringify({ before, after: loaded() }));
      providers.close();
    `;
    const run = spawnSync(process.execPath, ["--input-type=module", "-e", script], {
      encoding: "utf8",
      timeout: 30_000,
      env: { ...process.env, AWS_REGION: "eu-west-1", AWS_EC2_METADATA_DISABLED: "true" },
    });
    expect(run.stderr).toBe("");
    const counts = JSON.parse(run.stdout.trim()) as Record<"before" | "after", { aws: number; gcp: number }>;
    expect(counts.before).toEqual({ aws: 0, gcp: 0 });
    expect(counts.after.aws).toBeGreaterThan(0);
    expect(counts.after.gcp).toBe(0);
  });
});
