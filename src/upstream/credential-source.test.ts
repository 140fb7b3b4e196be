import {
  chmodSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Secret } from "../config/index.ts";
import {
  createCredentialSource,
  fixedCredentials,
  HelperCredentials,
  PasswordFileCredentials,
} from "./credential-source.ts";
import { UpstreamError } from "./errors.ts";

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "pullgate-credential-source-"));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const fresh = (name: string) => {
  const d = join(dir, `${name}-${n++}`);
  mkdirSync(d);
  return d;
};

async function authFailure(p: Promise<unknown>): Promise<UpstreamError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UpstreamError);
  expect((err as UpstreamError).code).toBe("AUTH_FAILED");
  return err as UpstreamError;
}

describe("fixedCredentials", () => {
  it("always gives the same login", async () => {
    const c = { username: "u", password: new Secret("p") };
    const s = fixedCredentials(c);
    s.invalidate(c);
    expect(await s.get()).toBe(c);
  });
});

describe("PasswordFileCredentials", () => {
  const source = (path: string) =>
    new PasswordFileCredentials({ upstream: "reg", username: "bot", path, checkIntervalMs: 0 });

  it("reads the file when first asked and again only when it changed (same content, same object)", async () => {
    const path = join(fresh("plain"), "password");
    writeFileSync(path, "one\n");
    const s = source(path);
    const first = await s.get();
    expect(first.username).toBe("bot");
    expect(first.password.reveal()).toBe("one");
    expect(await s.get()).toBe(first);
    expect(s.reads).toBe(1);
    // Rewritten in place: a new mtime/size.
    writeFileSync(path, "two-two\n");
    const second = await s.get();
    expect(second.password.reveal()).toBe("two-two");
    // Touched, same content: read again, but the login is the same object (no tokens dropped).
    utimesSync(path, new Date(), new Date(Date.now() + 5_000));
    expect(await s.get()).toBe(second);
    expect(s.reads).toBe(3);
  });

  it("sees a kubelet-style rotation: ..data swapped to a new timestamped directory", async () => {
    const secret = fresh("kubelet");
    const writeVersion = (name: string, password: string) => {
      mkdirSync(join(secret, name));
      writeFileSync(join(secret, name, "password"), password);
      // The kubelet's atomic writer: a new ..data_tmp link renamed over ..data.
      symlinkSync(name, join(secret, "..data_tmp"));
      renameSync(join(secret, "..data_tmp"), join(secret, "..data"));
    };
    writeVersion("..2026_01_01_00_00_00.000000001", "first-password");
    symlinkSync("..data/password", join(secret, "password"));
    const s = source(join(secret, "password"));
    expect((await s.get()).password.reveal()).toBe("first-password");
    // Same length, and the mtime of the new file may equal the old one's: the inode tells.
    writeVersion("..2026_01_01_01_00_00.000000002", "other-password");
    expect((await s.get()).password.reveal()).toBe("other-password");
    rmSync(join(secret, "..2026_01_01_00_00_00.000000001"), { recursive: true });
    expect((await s.get()).password.reveal()).toBe("other-password");
  });

  it("looks at the file at most once per checkIntervalMs", async () => {
    const path = join(fresh("interval"), "password");
    writeFileSync(path, "one");
    let t = 0;
    const s = new PasswordFileCredentials({ upstream: "reg", username: "bot", path, now: () => t });
    expect((await s.get()).password.reveal()).toBe("one");
    writeFileSync(path, "two");
    t = 500;
    expect((await s.get()).password.reveal()).toBe("one");
    t = 1_000;
    expect((await s.get()).password.reveal()).toBe("two");
  });

  it("after invalidate() reads the file once more even when it looks unchanged; concurrent callers share the read", async () => {
    const path = join(fresh("invalidate"), "password");
    writeFileSync(path, "one");
    const s = new PasswordFileCredentials({
      upstream: "reg",
      username: "bot",
      path,
      checkIntervalMs: 60_000,
    });
    const first = await s.get();
    s.invalidate(first);
    s.invalidate(first);
    const all = await Promise.all([s.get(), s.get(), s.get()]);
    expect(s.reads).toBe(2);
    expect(all.every((c) => c === first)).toBe(true);
    // A refusal of a login that has been replaced already changes nothing.
    s.invalidate({ username: "bot", password: new Secret("old") });
    await s.get();
    expect(s.reads).toBe(2);
  });

  it("fails with AUTH_FAILED naming the file when it is missing or empty, never with the password", async () => {
    const d = fresh("missing");
    const e = await authFailure(source(join(d, "nope")).get());
    expect(e.message).toBe(`cannot read passwordFile ${join(d, "nope")} (ENOENT)`);
    writeFileSync(join(d, "empty"), "\n");
    expect((await authFailure(source(join(d, "empty")).get())).message).toMatch(/is empty$/);
    // A file that goes away after a good read: the request fails (never the old login silently).
    const path = join(d, "pw");
    writeFileSync(path, "hunter2");
    const s = new PasswordFileCredentials({
      upstream: "reg",
      username: "bot",
      path,
      checkIntervalMs: 60_000,
    });
    await s.get();
    rmSync(path);
    s.invalidate(); // a 401
    const gone = await authFailure(s.get());
    expect(inspect(gone)).not.toContain("hunter2");
    // Not the old password from the interval's shortcut either, until the file reads again.
    await authFailure(s.get());
    writeFileSync(path, "hunter3");
    expect((await s.get()).password.reveal()).toBe("hunter3");
  });
});

describe("HelperCredentials (a real helper program that counts its runs)", () => {
  let bin: string;
  let env: NodeJS.ProcessEnv;
  beforeAll(() => {
    bin = fresh("bin");
    env = { PATH: `${bin}:${process.env.PATH ?? "/usr/bin:/bin"}`, STATE: bin };
    // Prints the password in $STATE/password (exit 1 when $STATE/fail exists), counts runs in $STATE/runs.
    writeFileSync(
      join(bin, "docker-credential-count"),
      `#!/bin/sh
echo run >> "$STATE/runs"
if [ -e "$STATE/fail" ]; then echo "token expired, run aws sso login" >&2; exit 2; fi
sleep 0.1
printf '{"ServerURL":"x","Username":"AWS","Secret":"%s"}' "$(cat "$STATE/password")"
`,
    );
    chmodSync(join(bin, "docker-credential-count"), 0o755);
  });
  const runs = () => readFileSync(join(bin, "runs"), "utf8").split("\n").filter(Boolean).length;
  const reset = (password: string) => {
    writeFileSync(join(bin, "runs"), "");
    writeFileSync(join(bin, "password"), password);
    rmSync(join(bin, "fail"), { force: true });
  };

  function helper(now: () => number, extra: { rerunOnRefusalMs?: number; failureHoldMs?: number } = {}) {
    return new HelperCredentials({
      upstream: "ecr",
      helper: "count",
      serverUrl: "123.dkr.ecr.us-east-1.amazonaws.com",
      timeoutMs: 5_000,
      cacheSeconds: 900,
      env,
      now,
      ...extra,
    });
  }

  it("runs once for many concurrent and later callers, and again when cacheSeconds have passed", async () => {
    reset("tok-1");
    let t = 0;
    const h = helper(() => t);
    const all = await Promise.all(Array.from({ length: 20 }, () => h.get()));
    expect(new Set(all).size).toBe(1);
    expect(all[0]?.password.reveal()).toBe("tok-1");
    t = 899_000;
    expect(await h.get()).toBe(all[0]);
    expect(runs()).toBe(1);
    writeFileSync(join(bin, "password"), "tok-2");
    t = 900_000;
    expect((await h.get()).password.reveal()).toBe("tok-2");
    expect(runs()).toBe(2);
  });

  it("the same answer again is the same object (nothing dropped)", async () => {
    reset("same");
    let t = 0;
    const h = helper(() => t);
    const first = await h.get();
    t = 1_000_000;
    expect(await h.get()).toBe(first);
    expect(runs()).toBe(2);
  });

  it("runs again once after a refusal, shared by concurrent callers; at most once per rerunOnRefusalMs", async () => {
    reset("tok-a");
    let t = 0;
    const h = helper(() => t);
    const a = await h.get();
    writeFileSync(join(bin, "password"), "tok-b");
    const afterRefusal = await Promise.all(
      Array.from({ length: 10 }, async () => {
        h.invalidate(a);
        return h.get();
      }),
    );
    expect(runs()).toBe(2);
    expect(afterRefusal.every((c) => c.password.reveal() === "tok-b")).toBe(true);
    const b = afterRefusal[0];
    // A late refusal of the old login does nothing.
    h.invalidate(a);
    expect(await h.get()).toBe(b);
    // A refusal of the new one within 10 s is not a rotation (e.g. a repository the login cannot read).
    t = 5_000;
    h.invalidate(b);
    expect(await h.get()).toBe(b);
    expect(runs()).toBe(2);
    t = 10_000;
    h.invalidate(b);
    await h.get();
    expect(runs()).toBe(3);
  });

  it("a failing helper: AUTH_FAILED naming the helper and what it said, held briefly, then run again", async () => {
    reset("tok");
    writeFileSync(join(bin, "fail"), "");
    let t = 0;
    const h = helper(() => t);
    const e = await authFailure(h.get());
    expect(e.upstream).toBe("ecr");
    expect(e.message).toBe(
      "credential helper docker-credential-count failed: exit 2: token expired, run aws sso login",
    );
    t = 4_000;
    await authFailure(h.get());
    expect(runs()).toBe(1);
    rmSync(join(bin, "fail"));
    t = 5_000;
    expect((await h.get()).password.reveal()).toBe("tok");
    expect(runs()).toBe(2);
  });

  it("is what createCredentialSource makes of `helper`, and says so", () => {
    const s = createCredentialSource(
      { kind: "helper", helper: "count", serverUrl: "x", timeoutMs: 1_000, cacheSeconds: 60 },
      { upstream: "u" },
    );
    expect(s).toBeInstanceOf(HelperCredentials);
    expect(s.description).toBe("credential helper docker-credential-count");
  });
});
