import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunResult, run } from "../src/local/index.ts";
import {
  createKubeletSecret,
  rotateRegistryPassword,
  writeTestCredentialHelper,
} from "./support/credential-helpers.ts";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { errorCodeOf, rawRequest, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";

// Registry logins that expire (issue 11): a real docker-registry with htpasswd (bcrypt) auth whose
// password is rotated during the test, pullgate in front of it with its login from a password file in
// a kubelet-style Secret volume, or from a credential helper the test provides (found on PATH), and
// skopeo pulling through pullgate.

const ROBOT = "robot";
const ACCEPT = "application/vnd.oci.image.manifest.v1+json";

let work: string;
let registry: Registry;
let app: ImageResult;
/** The password the registry accepts now. */
let password = "first-registry-pw";
const originalPath = process.env.PATH;

/** skopeo copy through pullgate, anonymous (pullgate's own login reaches the registry). */
function pull(pg: TestPullgate, repository: string): Promise<RunResult> {
  const env = { ...process.env };
  delete env.REGISTRY_AUTH_FILE;
  delete env.CONTAINERS_REGISTRIES_CONF;
  delete env.CONTAINERS_CONF;
  return run(
    "skopeo",
    [
      "--insecure-policy",
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      "--src-no-creds",
      `docker://${pg.host}/${repository}:v1`,
      `oci:${join(work, `copy-${Date.now()}-${Math.random().toString(36).slice(2)}`)}:v1`,
    ],
    { env, timeoutMs: 60_000 },
  );
}

async function expectPulled(pg: TestPullgate, repository: string): Promise<void> {
  const r = await pull(pg, repository);
  expect(r.code, r.stderr).toBe(0);
}

async function rotate(next: string): Promise<void> {
  await rotateRegistryPassword(registry.configFile, ROBOT, next);
  password = next;
  // The registry refuses the old password from now on.
  const basic = (p: string) => `Basic ${Buffer.from(`${ROBOT}:${p}`).toString("base64")}`;
  const status = async (p: string) =>
    (await fetch(`${registry.url}/v2/`, { headers: { authorization: basic(p) } })).status;
  expect(await status(next)).toBe(200);
}

/** Statuses of the registry's manifest answers since `from` (its request log). */
async function manifestStatuses(from: number): Promise<number[]> {
  return (await registry.requests())
    .slice(from)
    .filter((r) => r.path.includes("/manifests/"))
    .map((r) => r.status);
}

beforeAll(async () => {
  work = await makeTempDir("registry-credentials");
  registry = await startRegistry({ auth: { username: ROBOT, password } });
  const layout = join(work, "layout");
  app = await createImage({
    dir: layout,
    tag: "v1",
    layers: [{ size: 32 * 1024, seed: "registry-credentials" }],
  });
  for (const repo of ["proj/app", "proj/other", "team/tool"]) {
    await pushImage({
      layoutDir: layout,
      tag: "v1",
      dest: `${registry.host}/${repo}:v1`,
      creds: `${ROBOT}:${password}`,
    });
  }
}, 120_000);

afterAll(async () => {
  process.env.PATH = originalPath;
  await registry?.stop();
  if (work) await removeDir(work);
});

describe("passwordFile in a Kubernetes Secret volume, rotated", () => {
  let pg: TestPullgate;
  let secret: Awaited<ReturnType<typeof createKubeletSecret>>;

  beforeAll(async () => {
    secret = await createKubeletSecret(join(work, "secret"), { password: `${password}\n` });
    pg = await startTestPullgate(
      `  - name: private\n    url: "${registry.url}"\n    credentials: { username: ${ROBOT}, passwordFile: ${JSON.stringify(secret.path("password"))} }`,
      "clientAuth: { open: true }",
    );
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it("pulls with the password in the file", async () => {
    await expectPulled(pg, "proj/app");
  });

  it("after the registry's password changed, pulls fail until the Secret is rotated, then succeed with the new password", async () => {
    const old = password;
    await rotate("second-registry-pw");
    // The file still holds the old password: read again on the 401, still refused.
    const refused = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/v1", {
      headers: { accept: ACCEPT },
    });
    expect(refused.status).toBe(401);
    expect(errorCodeOf(refused)).toBe("UNAUTHORIZED");

    // The kubelet swaps ..data to a new directory holding the new password.
    await secret.update({ password: `${password}\n` });
    const before = (await registry.requests()).length;
    await expectPulled(pg, "proj/app");
    await expectPulled(pg, "proj/other");
    // Seen at the next use (the file is looked at on use) or on the one 401 it costs: never more.
    const statuses = await manifestStatuses(before);
    expect(statuses.filter((s) => s === 401).length).toBeLessThanOrEqual(1);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(2);

    const logs = JSON.stringify(pg.logs);
    expect(logs).not.toContain(old);
    expect(logs).not.toContain(password);
  });
});

describe("credentials.helper: a docker-credential helper of the test's own", () => {
  let pg: TestPullgate;
  let helper: Awaited<ReturnType<typeof writeTestCredentialHelper>>;
  const bin = () => join(work, "bin");

  beforeAll(async () => {
    helper = await writeTestCredentialHelper(bin(), "pgtest", join(work, "pgtest-state"));
    await helper.setLogin(ROBOT, password);
    // Found on PATH, like docker-credential-ecr-login on a node.
    process.env.PATH = `${bin()}:${originalPath ?? "/usr/bin:/bin"}`;
    pg = await startTestPullgate(
      `  - name: private\n    url: "${registry.url}"\n    credentials: { helper: pgtest }`,
      "clientAuth: { open: true }",
    );
  });
  afterAll(async () => {
    await pg?.stop();
  });

  it("runs the helper once, asking for the registry's host:port, for many pulls", async () => {
    await expectPulled(pg, "proj/app");
    await expectPulled(pg, "team/tool");
    const many = await Promise.all(
      ["proj/app", "proj/other", "team/tool", "proj/app"].map((r) =>
        rawRequest(pg.proxyUrl, `/v2/${r}/manifests/v1`, { headers: { accept: ACCEPT } }),
      ),
    );
    expect(many.map((r) => r.status)).toEqual([200, 200, 200, 200]);
    expect(many[0]?.headers["docker-content-digest"]).toBe(app.manifestDigest);
    expect(await helper.runs()).toEqual([registry.host]);
  });

  it("runs it again when a rotation makes the registry refuse the login: one run for concurrent refusals, one retry each", async () => {
    await rotate("third-registry-pw");
    await helper.setLogin(ROBOT, password);
    const before = (await registry.requests()).length;
    const [pulled, ...raw] = await Promise.all([
      pull(pg, "proj/app"),
      ...["proj/other", "team/tool", "proj/app"].map((r) =>
        rawRequest(pg.proxyUrl, `/v2/${r}/manifests/v1`, { headers: { accept: ACCEPT } }),
      ),
    ]);
    expect(pulled?.code, pulled?.stderr).toBe(0);
    expect(raw.map((r) => r.status)).toEqual([200, 200, 200]);
    expect(await helper.runs()).toEqual([registry.host, registry.host]);
    // Each refused request was retried once with the new login.
    const statuses = await manifestStatuses(before);
    const refusals = statuses.filter((s) => s === 401).length;
    expect(refusals).toBeGreaterThanOrEqual(1);
    expect(refusals).toBeLessThanOrEqual(4);
    expect(statuses.filter((s) => s === 200).length).toBeGreaterThanOrEqual(4);
    // And then the new login is simply used.
    const after = (await registry.requests()).length;
    await expectPulled(pg, "team/tool");
    expect(await manifestStatuses(after)).not.toContain(401);
    expect(await helper.runs()).toHaveLength(2);
  });

  it("a failing helper: the client gets an error naming the helper, never the image", async () => {
    await helper.setFailing(true);
    // A pullgate that has no login yet (the first one keeps its cached login for 15 minutes).
    const fresh = await startTestPullgate(
      `  - name: private\n    url: "${registry.url}"\n    credentials: { helper: pgtest }`,
      "clientAuth: { open: true }",
    );
    try {
      const res = await rawRequest(fresh.proxyUrl, "/v2/proj/app/manifests/v1", {
        headers: { accept: ACCEPT },
      });
      expect(res.status).toBe(502);
      expect(errorCodeOf(res)).toBe("UNAVAILABLE");
      const message = (JSON.parse(res.body.toString("utf8")) as { errors: Array<{ message: string }> })
        .errors[0]?.message;
      expect(message).toBe(
        "upstream authentication failed: credential helper docker-credential-pgtest failed: exit 1: pgtest: the cloud login expired, run the login again",
      );
      // skopeo shows a 5xx by its status only (containers/image reads error bodies of 4xx answers).
      const pulled = await pull(fresh, "proj/app");
      expect(pulled.code).not.toBe(0);
      expect(pulled.stderr).toMatch(/502 Bad Gateway/);
      // pullgate's log says which upstream's login failed (the message, with the helper, went to the client).
      expect(fresh.logs).toContainEqual(
        expect.objectContaining({
          event: "request failed",
          code: "AUTH_FAILED",
          upstream: "private",
          status: 502,
        }),
      );
      // Held for a few seconds rather than run again per request.
      expect((await helper.runs()).length).toBeLessThanOrEqual(4);
      const logs = JSON.stringify([...fresh.logs, ...pg.logs]);
      expect(logs).not.toContain(password);
    } finally {
      await fresh.stop();
      await helper.setFailing(false);
    }
  });
});
