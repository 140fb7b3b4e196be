import { describe, expect, it } from "vitest";
import { Secret } from "../config/secret.ts";
import { createAuditLog } from "./audit-log.ts";
import { createLogger, createMemoryLogger, errorCause, formatText, MAX_CAUSE_MESSAGE } from "./logger.ts";

const T = new Date("2026-12-07T06:00:00.000Z");

function capture(opts: Parameters<typeof createLogger>[0] & object = {}) {
  const lines: string[] = [];
  const logger = createLogger({
    ...opts,
    now: () => T,
    sink: (out) => lines.push(...out.split("\n").filter(Boolean)),
  });
  return { logger, lines };
}

describe("createLogger", () => {
  it("writes JSON lines by default, info and above", () => {
    const { logger, lines } = capture();
    logger.log("debug", "hidden", {});
    logger.log("info", "tls reloaded", { subject: "x", missing: undefined });
    logger.flush?.();
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      { time: T.toISOString(), level: "info", event: "tls reloaded", subject: "x" },
    ]);
  });

  it("drops lines below the configured level", () => {
    const { logger, lines } = capture({ level: "warn" });
    logger.log("info", "a");
    logger.log("warn", "b");
    logger.log("error", "c");
    logger.flush?.();
    expect(lines.map((l) => JSON.parse(l).event)).toEqual(["b", "c"]);
    const all = capture({ level: "debug" });
    all.logger.log("debug", "d");
    all.logger.flush?.();
    expect(all.lines).toHaveLength(1);
  });

  it("writes text lines: time LEVEL event key=value, quoting when needed, one line per event", () => {
    const { logger, lines } = capture({ format: "text" });
    logger.log("warn", "tls reload failed", {
      code: "ENOENT",
      n: 3,
      ok: true,
      note: "keeping the previous certificate",
      empty: "",
      eq: "a=b",
      multi: "line1\nline2",
      obj: { a: 1 },
      secret: new Secret("hunter2"),
      gone: undefined,
    });
    logger.flush?.();
    expect(lines).toEqual([
      '2026-12-07T06:00:00.000Z WARN tls reload failed code=ENOENT n=3 ok=true note="keeping the previous certificate" empty="" eq="a=b" multi="line1\\nline2" obj="{\\"a\\":1}" secret=[redacted]',
    ]);
    expect(formatText(T.toISOString(), "info", "access", { status: 200 })).toBe(
      "2026-12-07T06:00:00.000Z INFO access status=200\n",
    );
  });

  it("keeps audit records JSON and unfiltered whatever the log's level and format", () => {
    const { logger, lines } = capture({ format: "text", level: "error" });
    const audit = createAuditLog(logger, [], { now: () => T });
    audit.adminChange({ actor: "ops", action: "cache.delete", target: "sha256:x", after: { deleted: 1 } });
    logger.flush?.();
    expect(lines.map((l) => JSON.parse(l))).toEqual([
      {
        time: T.toISOString(),
        level: "info",
        event: "audit",
        schema: "pullgate.audit/v1",
        kind: "admin-change",
        actor: "ops",
        action: "cache.delete",
        target: "sha256:x",
        after: { deleted: 1 },
      },
    ]);
  });

  it("still hands audit records to a memory logger (tests read them)", () => {
    const logger = createMemoryLogger();
    const audit = createAuditLog(logger);
    audit.adminChange({ actor: "ops", action: "policy.reset", target: "proj" });
    expect(logger.records).toEqual([
      {
        level: "info",
        event: "audit",
        schema: "pullgate.audit/v1",
        kind: "admin-change",
        actor: "ops",
        action: "policy.reset",
        target: "proj",
      },
    ]);
  });

  it("logs a failing audit sink with its cause and goes on", () => {
    const logger = createMemoryLogger();
    const audit = createAuditLog(logger, [
      {
        adminChange() {
          throw Object.assign(new Error("boom"), { code: "EBOOM" });
        },
      },
    ]);
    audit.adminChange({ actor: "ops", action: "policy.reset", target: "proj" });
    expect(logger.records[1]).toEqual({
      level: "error",
      event: "audit sink failed",
      cause: { code: "EBOOM", message: "boom" },
    });
  });
});

describe("errorCause", () => {
  it("gives the code and a bounded one-line message without URL credentials", () => {
    const err = Object.assign(new Error("connect to redis://user:pa55@host:6379 failed\n  at x"), {
      code: "ECONNREFUSED",
    });
    expect(errorCause(err)).toEqual({
      code: "ECONNREFUSED",
      message: "connect to redis://[redacted]@host:6379 failed at x",
    });
    expect(errorCause(new Error("x".repeat(1000))).message).toHaveLength(MAX_CAUSE_MESSAGE);
    expect(errorCause("plain")).toEqual({ message: "plain" });
    expect(errorCause(undefined)).toEqual({ message: "error" });
  });
});
