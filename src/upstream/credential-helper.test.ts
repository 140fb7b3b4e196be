import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CredentialHelperError, parseHelperAnswer, runCredentialHelper } from "./credential-helper.ts";

// Real helper programs: shell scripts written here into a directory that only these tests put on PATH.

const SECRET = "s3cret-value-never-shown";
let bin: string;
let env: NodeJS.ProcessEnv;

function helper(name: string, body: string): void {
  const path = join(bin, `docker-credential-${name}`);
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}

const run = (name: string, extra: { timeoutMs?: number; serverUrl?: string; maxOutputBytes?: number } = {}) =>
  runCredentialHelper({
    helper: name,
    serverUrl: extra.serverUrl ?? "registry.test:5000",
    timeoutMs: extra.timeoutMs ?? 5_000,
    env,
    ...(extra.maxOutputBytes ? { maxOutputBytes: extra.maxOutputBytes } : {}),
  });

async function failure(p: Promise<unknown>): Promise<CredentialHelperError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(CredentialHelperError);
  const e = err as CredentialHelperError;
  expect(e.message).not.toContain(SECRET);
  expect(inspect(e)).not.toContain(SECRET);
  return e;
}

beforeAll(() => {
  bin = mkdtempSync(join(tmpdir(), "pullgate-helpers-"));
  env = { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, HOME: bin, AWS_PROFILE: "ci-profile" };
  helper(
    "ok",
    `read url
printf '{"ServerURL":"%s","Username":"robot-%s","Secret":"${SECRET}"}\\n' "$url" "$AWS_PROFILE"`,
  );
  helper("args", `printf '{"Username":"%s","Secret":"x"}' "$*"`);
  helper("missing", `echo "credentials not found in native keychain"; exit 1`);
  helper("stderr", `echo "AccessDenied: not authorized to perform ecr:GetAuthorizationToken" >&2; exit 3`);
  helper("leaky", `echo '{"Username":"robot","Secret":"${SECRET}"}'; exit 1`);
  helper("garbage", `echo 'this is not {"Secret":"${SECRET}"'`);
  helper("array", `echo '[1,2]'`);
  helper("nosecret", `echo '{"Username":"robot","Secret":""}'`);
  helper("identity", `echo '{"Username":"<token>","Secret":"${SECRET}"}'`);
  helper("huge", "head -c 200000 /dev/zero | tr '\\0' a");
  helper("hang", "sleep 30");
  helper("noread", `printf '{"Username":"u","Secret":"${SECRET}"}'`);
  writeFileSync(join(bin, "docker-credential-noexec"), "#!/bin/sh\necho {}\n");
});

afterAll(() => rmSync(bin, { recursive: true, force: true }));

describe("runCredentialHelper", () => {
  it("runs docker-credential-NAME get with the server URL on stdin and this environment", async () => {
    const c = await run("ok", { serverUrl: "123.dkr.ecr.us-east-1.amazonaws.com" });
    expect(c.username).toBe("robot-ci-profile");
    expect(c.password.reveal()).toBe(SECRET);
    expect(inspect(c)).not.toContain(SECRET);
    expect(JSON.stringify(c)).not.toContain(SECRET);
    expect((await run("args")).username).toBe("get");
  });

  it("a helper that does not read its stdin still answers", async () => {
    expect((await run("noread")).username).toBe("u");
  });

  it("a non-zero exit names the helper and quotes what it said (stdout, as docker's helpers write it)", async () => {
    const e = await failure(run("missing"));
    expect(e.message).toBe(
      "credential helper docker-credential-missing failed: exit 1: credentials not found in native keychain",
    );
    const e2 = await failure(run("stderr"));
    expect(e2.message).toMatch(/docker-credential-stderr failed: exit 3: AccessDenied: not authorized/);
  });

  it("never quotes output that may hold a secret", async () => {
    const e = await failure(run("leaky"));
    expect(e.message).toBe("credential helper docker-credential-leaky failed: exit 1");
  });

  it("refuses garbage, non-objects, empty secrets and identity tokens without quoting them", async () => {
    expect((await failure(run("garbage"))).message).toMatch(/not the credential-helper JSON/);
    expect((await failure(run("array"))).message).toMatch(/not a JSON object/);
    expect((await failure(run("nosecret"))).message).toMatch(/no Secret/);
    expect((await failure(run("identity"))).message).toMatch(/identity token/);
  });

  it("kills a helper that prints more than the cap", async () => {
    const e = await failure(run("huge", { maxOutputBytes: 64 * 1024 }));
    expect(e.message).toMatch(/printed more than 65536 bytes/);
  });

  it("kills a helper (and what it started) at the deadline", async () => {
    const started = Date.now();
    const e = await failure(run("hang", { timeoutMs: 300 }));
    expect(e.message).toBe(
      "credential helper docker-credential-hang failed: did not answer within 300 ms (killed)",
    );
    // `sleep` (the script's child) holds the pipes: without the group kill this would take 30 s.
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it("says when the helper is not on PATH or not executable", async () => {
    expect((await failure(run("nope"))).message).toBe(
      "credential helper docker-credential-nope failed: docker-credential-nope not found on PATH",
    );
    expect((await failure(run("noexec"))).message).toMatch(/docker-credential-noexec is not executable/);
  });
});

describe("parseHelperAnswer", () => {
  it("takes Username and Secret, ignores ServerURL, refuses a Username that cannot go in Basic", () => {
    const ok = parseHelperAnswer('{"ServerURL":"x","Username":"AWS","Secret":"tok"}');
    expect(typeof ok === "object" && ok.password.reveal()).toBe("tok");
    expect(parseHelperAnswer('{"Username":"a:b","Secret":"tok"}')).toMatch(/not usable/);
    expect(parseHelperAnswer('{"Secret":"tok"}')).toMatch(/no Username/);
  });
});
