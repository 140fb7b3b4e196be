import { appendFile, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunResult, run, runOk } from "../src/local/index.ts";
import { type Containerd, startContainerd, writeHostsToml } from "./support/containerd.ts";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { errorCodeOf, rawRequest, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";

// Security finding 6: pullgate holds a robot login for a private registry. Without client
// authentication anyone who reaches the proxy reads the registry through that login. Here the attack
// is made with real clients (skopeo, ctr) against a real registry that requires HTTP Basic, through a
// pullgate with `clientAuth.htpasswd` (a file written by `htpasswd -B`), and the CLI is shown to
// refuse to start with upstream credentials and no client authentication.

const ROBOT = { user: "robot", pass: "robot-registry-pw" };
const CI = { user: "ci-bot", pass: "ci-bot-pw-1" };
const DEV = { user: "dev", pass: "dev-pw-2" };
const BIN = join(import.meta.dirname, "..", "bin", "pullgate.js");

let work: string;
let registry: Registry;
let containerd: Containerd;
let pg: TestPullgate;
let app: ImageResult;
let hostsDir: string;
let htpasswdFile: string;

const basic = (c: { user: string; pass: string }) =>
  `Basic ${Buffer.from(`${c.user}:${c.pass}`).toString("base64")}`;

/** skopeo without the developer's registry credentials or config. */
function skopeo(args: string[]): Promise<RunResult> {
  const env = { ...process.env };
  delete env.REGISTRY_AUTH_FILE;
  delete env.CONTAINERS_REGISTRIES_CONF;
  delete env.CONTAINERS_CONF;
  return run("skopeo", ["--insecure-policy", ...args], { env, timeoutMs: 60_000 });
}

const inspect = (ref: string, creds?: { user: string; pass: string }) =>
  skopeo([
    "inspect",
    "--raw",
    "--tls-verify=false",
    ...(creds ? ["--creds", `${creds.user}:${creds.pass}`] : ["--no-creds"]),
    `docker://${ref}`,
  ]);

const copy = (ref: string, dest: string, creds?: { user: string; pass: string }) =>
  skopeo([
    "copy",
    "--quiet",
    "--src-tls-verify=false",
    ...(creds ? ["--src-creds", `${creds.user}:${creds.pass}`] : ["--src-no-creds"]),
    `docker://${ref}`,
    `oci:${dest}:v1`,
  ]);

beforeAll(async () => {
  work = await makeTempDir("client-auth-test");
  [registry, containerd] = await Promise.all([
    startRegistry({ auth: { username: ROBOT.user, password: ROBOT.pass } }),
    startContainerd(),
  ]);
  const layout = join(work, "layout");
  app = await createImage({ dir: layout, tag: "v1", layers: [{ size: 64 * 1024, seed: "client-auth" }] });
  const creds = `${ROBOT.user}:${ROBOT.pass}`;
  await pushImage({ layoutDir: layout, tag: "v1", dest: `${registry.host}/proj/app:v1`, creds });
  await pushImage({ layoutDir: layout, tag: "v1", dest: `${registry.host}/team/app:v1`, creds });
  htpasswdFile = join(work, "htpasswd");
  await runOk("htpasswd", ["-B", "-b", "-c", htpasswdFile, CI.user, CI.pass]);
  await runOk("htpasswd", ["-B", "-b", htpasswdFile, DEV.user, DEV.pass]);
  expect(await readFile(htpasswdFile, "utf8")).toMatch(/^ci-bot:\$2y\$/);
  pg = await startTestPullgate(
    `  - name: private\n    url: "${registry.url}"\n    credentials: { username: ${ROBOT.user}, password: ${ROBOT.pass} }`,
    `clientAuth:\n  htpasswd: ${JSON.stringify(htpasswdFile)}\nprojects:\n  proj:\n    pull: ["ci-bot"]\n`,
  );
  hostsDir = join(work, "hosts");
  await writeHostsToml(hostsDir, registry.host, pg.proxyUrl);
}, 120_000);

afterAll(async () => {
  await pg?.stop();
  await Promise.all([containerd?.stop(), registry?.stop()]);
  if (work) await removeDir(work);
});

describe("an anonymous client", () => {
  it("gets 401 with a Basic challenge on GET /v2/, and the registry is never asked", async () => {
    const before = (await registry.requests()).length;
    const res = await rawRequest(pg.proxyUrl, "/v2/");
    expect(res.status).toBe(401);
    expect(res.headers["www-authenticate"]).toBe('Basic realm="pullgate"');
    expect(errorCodeOf(res)).toBe("UNAUTHORIZED");
    const manifest = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/v1");
    expect(manifest.status).toBe(401);
    expect((await registry.requests()).slice(before)).toEqual([]);
  });

  it("cannot read the private registry through pullgate with skopeo inspect or copy", async () => {
    const before = (await registry.requests()).length;
    const res = await inspect(`${pg.host}/proj/app:v1`);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/unauthorized|401/i);
    const copied = await copy(`${pg.host}/team/app:v1`, join(work, "anon-copy"));
    expect(copied.code).not.toBe(0);
    expect(copied.stderr).toMatch(/unauthorized|401/i);
    // Nothing was fetched with pullgate's robot login on their behalf.
    expect((await registry.requests()).slice(before)).toEqual([]);
  });

  it("cannot pull with ctr either", async () => {
    const res = await containerd.pull(`${registry.host}/proj/app:v1`, { hostsDir, unpack: true });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/401|unauthorized/i);
  });

  it("gets 401 with wrong credentials", async () => {
    const res = await inspect(`${pg.host}/proj/app:v1`, { user: CI.user, pass: "not-the-password" });
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/unauthorized|401/i);
  });
});

describe("an authenticated client", () => {
  it("pulls with skopeo --creds (inspect and copy), through pullgate's own registry login", async () => {
    const res = await inspect(`${pg.host}/proj/app:v1`, CI);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout.trim()).toBe(app.manifestBytes.toString("utf8").trim());
    const dest = join(work, "ci-copy");
    const copied = await copy(`${pg.host}/proj/app:v1`, dest, CI);
    expect(copied.code, copied.stderr).toBe(0);
    const index = JSON.parse(await readFile(join(dest, "index.json"), "utf8")) as {
      manifests: Array<{ digest: string }>;
    };
    expect(index.manifests[0]?.digest).toBe(app.manifestDigest);
  });

  it("pulls with ctr images pull --user", async () => {
    await containerd.clear();
    const res = await containerd.pull(`${registry.host}/proj/app:v1`, {
      hostsDir,
      unpack: true,
      user: `${CI.user}:${CI.pass}`,
    });
    expect(res.code, res.stderr).toBe(0);
    const images = await containerd.ctr(["images", "ls", "-q"]);
    expect(images.stdout).toContain(`${registry.host}/proj/app:v1`);
  });

  it("pulls with containerd's hosts.toml sending the login as a static header (deploy/clients)", async () => {
    await containerd.clear();
    const dir = join(work, "hosts-with-header");
    const file = await writeHostsToml(dir, registry.host, pg.proxyUrl);
    await appendFile(
      file,
      `\n[host.${JSON.stringify(pg.proxyUrl)}.header]\n  Authorization = ${JSON.stringify(basic(CI))}\n`,
    );
    const res = await containerd.pull(`${registry.host}/proj/app:v1`, { hostsDir: dir, unpack: true });
    expect(res.code, res.stderr).toBe(0);
  });

  it("is denied a project whose pull list does not name it, and may pull the others", async () => {
    const res = await inspect(`${pg.host}/proj/app:v1`, DEV);
    expect(res.code).not.toBe(0);
    expect(res.stderr).toMatch(/denied/i);
    const raw = await rawRequest(pg.proxyUrl, "/v2/proj/app/manifests/v1", {
      headers: { authorization: basic(DEV) },
    });
    expect(raw.status).toBe(403);
    expect(errorCodeOf(raw)).toBe("DENIED");
    const message = (JSON.parse(raw.body.toString("utf8")) as { errors: Array<{ message: string }> })
      .errors[0]?.message;
    expect(message).toContain('"dev"');
    expect(message).toContain('"proj"');
    // team/ has no list: any authenticated client (defaults.pull ["*"]).
    const other = await inspect(`${pg.host}/team/app:v1`, DEV);
    expect(other.code, other.stderr).toBe(0);
  });

  it("leaves its principal in the access log, and no password anywhere in the log", async () => {
    const text = JSON.stringify(pg.logs);
    for (const secret of [CI.pass, DEV.pass, ROBOT.pass, basic(CI).slice(6), basic(ROBOT).slice(6)])
      expect(text).not.toContain(secret);
    const principals = new Set(pg.logs.filter((r) => r.event === "access").map((r) => r.principal));
    expect(principals).toContain("ci-bot");
    expect(principals).toContain("dev");
  });
});

describe("pullgate serve with upstream credentials", () => {
  const node = process.execPath;

  it("refuses to start without client authentication (exit 2, says what to do)", async () => {
    const file = join(work, "exposed.yaml");
    await writeFile(
      file,
      `upstreams:\n  - name: private\n    url: "${registry.url}"\n    credentials: { username: ${ROBOT.user}, password: ${ROBOT.pass} }\n`,
    );
    for (const args of [
      ["serve", "--check", "--config", file],
      ["serve", "--config", file],
    ]) {
      const res = await run(node, [BIN, ...args], { timeoutMs: 20_000 });
      expect(res.code, args.join(" ")).toBe(2);
      expect(res.stderr).toContain("upstreams[0].credentials");
      expect(res.stderr).toContain("clientAuth.htpasswd");
      expect(res.stderr).toContain("clientAuth.open: true");
      expect(res.stderr).not.toContain(ROBOT.pass);
      expect(res.stdout).not.toContain('"event":"listening"');
    }
  });

  it("accepts the same config with clientAuth.htpasswd, or with clientAuth.open: true said explicitly", async () => {
    const upstream = `upstreams:\n  - name: private\n    url: "${registry.url}"\n    credentials: { username: ${ROBOT.user}, password: ${ROBOT.pass} }\n`;
    for (const [name, clientAuth] of [
      ["htpasswd", `clientAuth: { htpasswd: ${JSON.stringify(htpasswdFile)} }\n`],
      ["open", "clientAuth: { open: true }\n"],
    ] as const) {
      const file = join(work, `${name}.yaml`);
      await writeFile(file, `${upstream}${clientAuth}`);
      const res = await run(node, [BIN, "serve", "--check", "--config", file], { timeoutMs: 20_000 });
      expect(res.code, res.stderr).toBe(0);
    }
  });
});
