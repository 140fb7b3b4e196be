import { afterAll, describe, expect, it } from "vitest";
import { fixtureCase, PGI_ROOT, vectorKey, vectorText } from "../../test/support/vectors.ts";
import { createPullgateMetrics } from "../telemetry/index.ts";
import { type Authority, compileSignerIdentity, judgeSignatures, parseTrustRoot } from "../verify/index.ts";
import { VerificationPool } from "./verification-pool.ts";

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
