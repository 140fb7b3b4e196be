import { describe, expect, it } from "vitest";
import { deniedMessageOf, lastDecisionFor, parseDemoArgs } from "./run-demo.ts";

describe("deniedMessageOf", () => {
  it("takes pullgate's message out of skopeo's fatal line, unescaping its quotes", () => {
    // skopeo 1.9.3, verbatim (digest shortened).
    const stderr =
      'time="2026-11-23T18:15:54Z" level=fatal msg="initializing source docker://127.0.0.1:34631/demo/unsigned:v1: reading manifest v1 in 127.0.0.1:34631/demo/unsigned: denied: project \\"demo\\" admits only signed images: demo/unsigned@sha256:4a0e has no signature"\n';
    expect(deniedMessageOf(stderr)).toBe(
      'project "demo" admits only signed images: demo/unsigned@sha256:4a0e has no signature',
    );
    expect(deniedMessageOf('time="x" level=fatal msg="connection refused"\n')).toBeUndefined();
  });
});

describe("lastDecisionFor", () => {
  it("picks the last manifest decision for the repository", () => {
    const records = [
      { event: "audit", kind: "manifest-decision", repository: "demo/a", outcome: "deny" },
      { event: "access", repository: "demo/a", status: 200 },
      { event: "audit", kind: "admin-change", target: "demo" },
      { event: "audit", kind: "manifest-decision", repository: "demo/a", outcome: "allow" },
      { event: "audit", kind: "manifest-decision", repository: "demo/b", outcome: "deny" },
    ];
    expect(lastDecisionFor(records, "demo/a")?.outcome).toBe("allow");
    expect(lastDecisionFor(records, "demo/c")).toBeUndefined();
  });
});

describe("parseDemoArgs", () => {
  it("knows --keep and --help, and refuses anything else", () => {
    expect(parseDemoArgs([])).toEqual({ keep: false });
    expect(parseDemoArgs(["--keep"])).toEqual({ keep: true });
    expect(parseDemoArgs(["-h"])).toBe("help");
    expect(parseDemoArgs(["--config", "x"])).toEqual({ error: 'unknown option "--config"' });
  });
});
