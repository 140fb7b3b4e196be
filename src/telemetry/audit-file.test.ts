import { mkdir, mkdtemp, readFile, rename, rm, stat, truncate, unlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { createAuditFile } from "./audit-file.ts";
import { createMemoryLogger } from "./logger.ts";

let dir: string;
let clock: number;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), "audit-file-"));
  clock = 0;
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

const lines = async (path: string) =>
  (await readFile(path, "utf8"))
    .split("\n")
    .filter(Boolean)
    .map((l) => (JSON.parse(l) as { n: number }).n);

function setup(extra: { maxBufferedBytes?: number; path?: string; checkIntervalMs?: number } = {}) {
  const path = extra.path ?? join(dir, "audit.jsonl");
  const logger = createMemoryLogger();
  const file = createAuditFile({ path, logger, now: () => clock, checkIntervalMs: 1_000, ...extra });
  return { path, logger, file };
}

describe("createAuditFile", () => {
  it("appends one JSON line per record, batching a turn's records into one write", async () => {
    const { path, file } = setup();
    for (let n = 1; n <= 3; n++) file.write({ n });
    await file.flush();
    file.write({ n: 4 });
    await file.close();
    expect(await lines(path)).toEqual([1, 2, 3, 4]);
    expect(file.stats).toEqual({ written: 4, dropped: 0, errors: 0, opens: 1 });
    // A second writer appends.
    const again = setup({ path });
    again.file.write({ n: 5 });
    await again.file.close();
    expect(await lines(path)).toEqual([1, 2, 3, 4, 5]);
  });

  it("follows a move-and-create rotation once the check interval has passed", async () => {
    const { path, file, logger } = setup();
    file.write({ n: 1 });
    await file.flush();
    await rename(path, `${path}.1`);
    await writeFile(path, ""); // logrotate's create
    file.write({ n: 2 }); // within the interval: still the old (moved) file
    await file.flush();
    clock += 1_000;
    file.write({ n: 3 });
    await file.close();
    expect(await lines(`${path}.1`)).toEqual([1, 2]);
    expect(await lines(path)).toEqual([3]);
    expect(logger.records).toEqual([
      { level: "info", event: "audit file reopened", path, reason: "rotated" },
    ]);
  });

  it("recreates a removed file, and keeps appending after copytruncate", async () => {
    const { path, file, logger } = setup();
    file.write({ n: 1 });
    await file.flush();
    await unlink(path);
    clock += 5_000;
    file.write({ n: 2 });
    await file.flush();
    expect(await lines(path)).toEqual([2]);
    await truncate(path, 0); // logrotate copytruncate
    file.write({ n: 3 });
    await file.close();
    expect(await lines(path)).toEqual([3]);
    expect(logger.records.map((r) => r.reason)).toEqual(["removed"]);
  });

  it("reopens on request (SIGHUP) without waiting for the check", async () => {
    const { path, file } = setup();
    file.write({ n: 1 });
    await file.flush();
    await rename(path, `${path}.1`);
    file.reopen();
    file.write({ n: 2 });
    await file.close();
    expect(await lines(path)).toEqual([2]);
    expect(file.stats.opens).toBe(2);
  });

  it("logs an open error once with its cause, counts it, and writes once the path works", async () => {
    const path = join(dir, "missing", "audit.jsonl");
    const { file, logger } = setup({ path });
    file.write({ n: 1 });
    await file.flush();
    file.write({ n: 2 });
    await file.flush();
    clock += 1_000;
    file.write({ n: 3 });
    await file.flush();
    const failures = logger.records.filter((r) => r.event === "audit file write failed");
    expect(failures).toEqual([
      {
        level: "error",
        event: "audit file write failed",
        path,
        operation: "open",
        dropped: 0,
        cause: { code: "ENOENT", message: expect.stringContaining("no such file") },
      },
    ]);
    expect(file.stats.errors).toBeGreaterThanOrEqual(2);
    // Kept in memory (bounded) meanwhile; written once the directory exists.
    await mkdir(join(dir, "missing"));
    file.reopen();
    await file.close();
    expect(await lines(path)).toEqual([1, 2, 3]);
  });

  it("reopens on request at once, with nothing waiting to be written (a quiet replica lets go of the rotated file)", async () => {
    const { path, file } = setup();
    file.write({ n: 1 });
    await file.flush();
    await rename(path, `${path}.1`);
    file.reopen();
    await file.flush();
    expect((await stat(path)).size).toBe(0);
    expect(file.stats.opens).toBe(2);
    await file.close();
  });

  it("tries a failed open again once per check interval, not on every write", async () => {
    const path = join(dir, "absent", "audit.jsonl");
    const { file } = setup({ path, checkIntervalMs: 60_000 });
    file.write({ n: 0 });
    await file.flush();
    expect(file.stats.errors).toBe(1);
    for (let n = 1; n <= 50; n++) {
      file.write({ n });
      await new Promise((r) => setImmediate(r));
    }
    expect(file.stats.errors).toBe(1);
    await file.close();
  });

  it("bounds what waits in bytes, not characters", async () => {
    const path = join(dir, "nowhere-utf8", "audit.jsonl");
    // 30 characters of 3 UTF-8 bytes each: a line of ~40 characters but ~100 bytes.
    const { file } = setup({ path, maxBufferedBytes: 80 });
    file.write({ s: "€".repeat(30) });
    expect(file.stats.dropped).toBe(1);
    await file.close();
  });

  it("bounds what waits: records beyond maxBufferedBytes are dropped, counted and logged once", async () => {
    const path = join(dir, "nowhere", "audit.jsonl");
    const { file, logger } = setup({ path, maxBufferedBytes: 30 });
    for (let n = 0; n < 10; n++) file.write({ n });
    await file.close();
    expect(file.stats.dropped).toBe(10);
    expect(logger.records.filter((r) => r.event === "audit records dropped")).toHaveLength(1);
  });
});
