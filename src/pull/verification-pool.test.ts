import { readdirSync, readFileSync } from "node:fs";
import { afterAll, describe, expect, it } from "vitest";
import { fixtureCase, PGI_ROOT, vectorKey, vectorText } from "../../test/support/vectors.ts";
import { createPullgateMetrics } from "../telemetry/index.ts";
import { type Authority, compileSignerIdentity, judgeSignatures, parseTrustRoot } from "../verify/index.ts";
import { VerificationPool } from "./verification-pool.ts";
import { VERIFICATION_THREAD_NICE } from "./verification-thread.ts";

// The worker pool judges exactly as the event loop would: same verdict, same reports.

const root = parseTrustRoot("pgi", vectorText(PGI_ROOT));
const metrics = createPullgateMetrics();
const pool = new VerificationPool({ threads: 1, metrics });
afterAll(() => pool.close());

const keyless = (subject: string): Authority => ({
  kind: "keyless",
  name: "mitr",
  identity: compileSignerIdentity({ name: "mitr", issuer: "https://github.com/login/oauth", subject }),
  root,
});
const key: Authority = {
  kind: "key",
  name: "cosign",
  key: vectorKey("containers-image/signature/fixtures/cosign.pub"),
  transparencyLog: "optional",
  root,
};

describe("VerificationPool", () => {
  it.each([
    ["keyless, accepted", "dir-img-cosign-fulcio-rekor-valid", [keyless("mitr@redhat.com")]],
    ["keyless, another identity", "dir-img-cosign-fulcio-rekor-valid", [keyless("x@redhat.com")]],
    ["a key beside a keyless identity", "dir-img-cosign-valid", [keyless("mitr@redhat.com"), key]],
  ])("%s: the worker's verdict is the in-process one", async (_, name, authorities) => {
    const fixture = fixtureCase(name);
    const input = { digest: fixture.digest ?? "", authorities, evidence: [fixture.evidence] };
    const before = metrics.workerJudgements.value();
    expect(await pool.judge(input)).toEqual(judgeSignatures(input));
    expect(metrics.workerJudgements.value()).toBe(before + 1);
  });

  it("key-only policies are judged in process (no thread hop for a 0.1 ms check)", async () => {
    const fixture = fixtureCase("dir-img-cosign-valid");
    const before = metrics.workerJudgements.value();
    const verdict = await pool.judge({
      digest: fixture.digest ?? "",
      authorities: [key],
      evidence: [fixture.evidence],
    });
    expect(verdict.status).toBe("verified");
    expect(metrics.workerJudgements.value()).toBe(before);
  });
});

describe("verification threads run below the event loop's priority", () => {
  /** The nice value of each thread of this process (field 19 of /proc/self/task/<tid>/stat). */
  const niceByThread = () =>
    new Map(
      readdirSync("/proc/self/task").map((tid) => {
        const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
        const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
        return [Number(tid), Number(fields[16])] as const;
      }),
    );

  it(`a worker renices its own thread to ${VERIFICATION_THREAD_NICE}; the event loop's thread keeps its own`, async () => {
    const before = niceByThread();
    const fixture = fixtureCase("dir-img-cosign-fulcio-rekor-valid");
    const own = new VerificationPool({ threads: 1 });
    try {
      await own.judge({
        digest: fixture.digest ?? "",
        authorities: [keyless("mitr@redhat.com")],
        evidence: [fixture.evidence],
      });
      const after = niceByThread();
      const reniced = [...after].filter(
        ([tid, nice]) => !before.has(tid) && nice === VERIFICATION_THREAD_NICE,
      );
      expect(reniced.length).toBeGreaterThanOrEqual(1);
      expect(after.get(process.pid)).toBe(before.get(process.pid));
      expect(after.get(process.pid)).not.toBe(VERIFICATION_THREAD_NICE);
    } finally {
      await own.close();
    }
  });
});
