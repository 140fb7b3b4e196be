import { describe, expect, it } from "vitest";
import {
  CONDITION_LIMITS,
  type CompiledCondition,
  type ConditionResult,
  compileCondition,
  evaluateCondition,
  evaluateConditionWithCost,
  patternWeight,
} from "./attestation-condition.ts";

const SLSA_V1 = "https://slsa.dev/provenance/v1";
const VULN_V1 = "https://cosign.sigstore.dev/attestation/vuln/v1";
const IMAGE_HEX = "4f3c2b1a09f8e7d6c5b4a39281706f5e4d3c2b1a09f8e7d6c5b4a39281706f5e";
const COMMIT = "7b2a3f9c0e4d5a6b8c9d0e1f2a3b4c5d6e7f8091";

const PROVENANCE_CONDITION =
  'predicate.buildDefinition.externalParameters.workflow.repository == "https://github.com/acme/app"';
const SCAN_CONDITION = "predicate.scanner.result.summary.critical == 0";

/** A SLSA v1 provenance predicate as GitHub Actions' attest-build-provenance writes it. */
function provenance(repository = "https://github.com/acme/app"): unknown {
  return json({
    buildDefinition: {
      buildType: "https://actions.github.io/buildtypes/workflow/v1",
      externalParameters: {
        workflow: { ref: "refs/tags/v1.4.2", repository, path: ".github/workflows/release.yml" },
      },
      internalParameters: {
        github: {
          event_name: "push",
          repository_id: "712345678",
          repository_owner_id: "98765432",
          runner_environment: "github-hosted",
        },
      },
      resolvedDependencies: [{ uri: `git+${repository}@refs/tags/v1.4.2`, digest: { gitCommit: COMMIT } }],
    },
    runDetails: {
      builder: { id: "https://github.com/actions/runner/github-hosted" },
      metadata: { invocationId: `${repository}/actions/runs/9876543210/attempts/1` },
    },
  });
}

/** A cosign vuln/v1 predicate (`cosign attest --type vuln`) around a Trivy-like result. */
function vulnScan(summary: Record<string, number>): unknown {
  const vulnerabilities = Object.entries(summary).flatMap(([severity, n]) =>
    Array.from({ length: n }, (_, i) => ({
      id: `CVE-2025-${severity.length}${i}`,
      severity: severity.toUpperCase(),
      pkg: `pkg:golang/example.com/lib${i}@v1.${i}.0`,
    })),
  );
  return json({
    invocation: {
      parameters: null,
      uri: "https://github.com/acme/app/actions/runs/9876543211",
      event_id: "9876543211",
      "builder.id": "https://github.com/acme/security/.github/workflows/scan.yml@refs/heads/main",
    },
    scanner: {
      uri: "pkg:github/aquasecurity/trivy@v0.58.1",
      version: "0.58.1",
      db: { uri: "pkg:oci/ghcr.io/aquasecurity/trivy-db@sha256:0e1d", version: "2" },
      result: { summary, vulnerabilities },
    },
    metadata: { scanStartedOn: "2026-01-10T12:00:00Z", scanFinishedOn: "2026-01-10T12:00:41Z" },
  });
}

const json = (v: unknown): unknown => JSON.parse(JSON.stringify(v));

const SUBJECT = [{ name: "ghcr.io/acme/app", digest: { sha256: IMAGE_HEX } }];

function compiled(source: string): CompiledCondition {
  const c = compileCondition(source);
  if ("problem" in c) throw new Error(c.problem);
  return c;
}

function run(
  source: string,
  predicate: unknown,
  subject: readonly unknown[] = SUBJECT,
  predicateType = SLSA_V1,
): ConditionResult {
  return evaluateCondition(compiled(source), { predicateType, predicate, subject });
}

function problemOf(source: string): string {
  const c = compileCondition(source);
  if (!("problem" in c)) throw new Error(`compiled: ${source}`);
  return c.problem;
}

describe("the policy's two example conditions", () => {
  it("provenance: true for the named repository, false for another", () => {
    expect(run(PROVENANCE_CONDITION, provenance())).toEqual({ ok: true, value: true });
    expect(run(PROVENANCE_CONDITION, provenance("https://github.com/evil/app"))).toEqual({
      ok: true,
      value: false,
    });
  });

  it("scan: true with no critical finding, false with one", () => {
    const clean = vulnScan({ critical: 0, high: 2, medium: 5, low: 9 });
    const dirty = vulnScan({ critical: 1, high: 2, medium: 5, low: 9 });
    expect(run(SCAN_CONDITION, clean, SUBJECT, VULN_V1)).toEqual({ ok: true, value: true });
    expect(run(SCAN_CONDITION, dirty, SUBJECT, VULN_V1)).toEqual({ ok: true, value: false });
  });

  it("a compiled condition is reused across statements and costs little", () => {
    const c = compiled(PROVENANCE_CONDITION);
    for (const [repo, want] of [
      ["https://github.com/acme/app", true],
      ["https://github.com/acme/app2", false],
    ] as const) {
      const { result, cost } = evaluateConditionWithCost(c, {
        predicateType: SLSA_V1,
        predicate: provenance(repo),
        subject: SUBJECT,
      });
      expect(result).toEqual({ ok: true, value: want });
      expect(cost).toBeLessThan(50);
    }
  });

  it("predicateType and richer provenance checks", () => {
    const p = provenance();
    expect(run(`predicateType == "${SLSA_V1}"`, p)).toEqual({ ok: true, value: true });
    expect(
      run(
        'predicate.runDetails.builder.id.startsWith("https://github.com/actions/runner/") && ' +
          "predicate.buildDefinition.externalParameters.workflow.ref.matches('^refs/tags/v[0-9]+\\\\.[0-9]+\\\\.[0-9]+$') && " +
          `predicate.buildDefinition.resolvedDependencies.exists(d, d.digest.gitCommit == "${COMMIT}")`,
        p,
      ),
    ).toEqual({ ok: true, value: true });
  });
});

describe("numbers: JSON numbers are doubles; equality and ordering are heterogeneous", () => {
  const p = json({ n: { zero: 0, two: 2, half: 0.5, big: 1e300, negZero: -0 } });

  it.each([
    ["predicate.n.zero == 0", true],
    ["predicate.n.zero == 0u", true],
    ["predicate.n.zero == 0.0", true],
    ["predicate.n.zero != 0", false],
    ["predicate.n.zero < 1", true],
    ["predicate.n.two >= 2u", true],
    ["predicate.n.half < 1 && predicate.n.half > 0", true],
    ["predicate.n.half == 0", false],
    ["predicate.n.big > 9223372036854775807", true],
    ["predicate.n.negZero == 0", true],
    ["type(predicate.n.two) == double", true],
    ["int(predicate.n.two) + 1 == 3", true],
    ["predicate.n.two + 1.0 == 3", true],
    ["predicate.n.two * predicate.n.half == 1", true],
    ["predicate.n.two in [1, 2, 3]", true],
    ["size(subject) == 1", true],
  ])("%s → %s", (source, value) => {
    expect(run(source, p)).toEqual({ ok: true, value });
  });

  it("arithmetic with an int literal has no overload: an evaluation problem, not false", () => {
    expect(run("predicate.n.zero + 1 == 1", p)).toEqual({
      ok: false,
      problem: "found no matching overload for '_+_' applied to '(double, int)' (line 1, column 18)",
    });
  });

  it("ints stay ints in the expression itself", () => {
    expect(run("1 + 2 == 3 && 7 / 2 == 3 && 7.0 / 2.0 == 3.5", p)).toEqual({ ok: true, value: true });
    expect(run("1 / 0 == 1", p)).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^int divide by zero/),
    });
  });
});

describe("missing keys and has()", () => {
  const p = vulnScan({ critical: 0 });

  it("a missing key is an evaluation problem naming the key and where", () => {
    expect(run("predicate.scanner.result.summary.high == 0", p)).toEqual({
      ok: false,
      problem: "no such key: high (line 1, column 33)",
    });
    expect(run("predicate.nothing.here == 1", p)).toEqual({
      ok: false,
      problem: "no such key: nothing (line 1, column 10)",
    });
    expect(run("predicate.scanner.version.major == 0", p)).toMatchObject({ ok: false });
    expect(run("subject[1].name == 'x'", p)).toEqual({
      ok: false,
      problem: "index 1 out of bounds (line 1, column 8)",
    });
  });

  it("has() guards", () => {
    expect(run("has(predicate.scanner.result.summary.high)", p)).toEqual({ ok: true, value: false });
    expect(run("has(predicate.scanner.result.summary.critical)", p)).toEqual({ ok: true, value: true });
    expect(
      run("!has(predicate.scanner.result.summary.high) || predicate.scanner.result.summary.high == 0", p),
    ).toEqual({ ok: true, value: true });
    expect(
      run("has(predicate.scanner.result.summary.high) && predicate.scanner.result.summary.high == 0", p),
    ).toEqual({ ok: true, value: false });
  });

  it("an error absorbed by || or && follows CEL's commutative logic", () => {
    expect(run("predicate.nothing == 1 || true", p)).toEqual({ ok: true, value: true });
    expect(run("predicate.nothing == 1 && false", p)).toEqual({ ok: true, value: false });
    expect(run("predicate.nothing == 1 || false", p)).toMatchObject({ ok: false });
  });

  it("a null value: == null holds, and the library's has() says false (CEL says true)", () => {
    expect(run("predicate.invocation.parameters == null", p)).toEqual({ ok: true, value: true });
    expect(run("has(predicate.invocation.parameters)", p)).toEqual({ ok: true, value: false });
  });

  it("keys that are not identifiers are read by index", () => {
    expect(run("predicate.invocation['builder.id'].endsWith('@refs/heads/main')", p)).toEqual({
      ok: true,
      value: true,
    });
  });
});

describe("results that are not a bool", () => {
  it.each([
    ["1 + 2", "yields int, not a bool"],
    ["'yes'", "yields string, not a bool"],
    ["predicateType", "yields string, not a bool"],
    ["subject", "yields list, not a bool"],
    ["size(subject)", "yields int, not a bool"],
    ["subject.map(s, s.name)", "yields list, not a bool"],
    ["subject.filter(s, true)", "yields list, not a bool"],
    ["{'a': true}", "yields map, not a bool"],
    ["true ? 1 : 2", "yields int, not a bool"],
    ["-predicate.x", "yields double or int, not a bool"],
    ["timestamp('2026-01-01T00:00:00Z')", "yields timestamp, not a bool"],
    ["null", "yields null, not a bool"],
  ])("%s is refused at load: %s", (source, words) => {
    expect(problemOf(source)).toBe(`condition: ${words}`);
  });

  it("a dyn that turns out not to be a bool is refused at evaluation", () => {
    const p = vulnScan({ critical: 0 });
    expect(run("predicate.scanner.result.summary.critical", p)).toEqual({
      ok: false,
      problem: "yields double, not a bool",
    });
    expect(run("predicate.scanner", p)).toEqual({ ok: false, problem: "yields map, not a bool" });
    expect(run("predicate.invocation.parameters", p)).toEqual({
      ok: false,
      problem: "yields null, not a bool",
    });
    expect(run("true ? predicate.scanner : false", p)).toEqual({
      ok: false,
      problem: "yields map, not a bool",
    });
  });

  it("bool-valued forms compile", () => {
    for (const source of [
      "true",
      "has(predicate.a)",
      "subject.all(s, true)",
      "subject.exists_one(s, true)",
      "predicate.x",
      "predicate['x']",
      "true ? predicate.x : false",
      "dyn(predicate.x)",
      "!predicate.x",
    ]) {
      expect(compileCondition(source), source).not.toHaveProperty("problem");
    }
  });
});

describe("refusals at load", () => {
  it("syntax errors name line and column", () => {
    expect(problemOf("predicate.a ==")).toBe(
      "condition: Syntax error: found = but expecting end of input (line 1, column 13)",
    );
    expect(problemOf("predicate.a == 'x' &&\n  predicate.b ==")).toMatch(
      /^condition: Syntax error: .* \(line 2, column \d+\)$/,
    );
    expect(problemOf("'unterminated")).toMatch(/^condition: Syntax error: .*\(line 1, column 1\)$/);
    expect(problemOf("'\\ud800' == predicateType")).toMatch(/^condition: Syntax error: /);
    expect(problemOf("")).toBe("condition: empty");
    expect(problemOf("  \n ")).toBe("condition: empty");
  });

  it("names: only the three variables, comprehension variables and type names", () => {
    expect(problemOf("predicat.a == 1")).toBe(
      "condition: undeclared reference to 'predicat' (line 1, column 1): the variables are predicate, predicateType and subject",
    );
    expect(problemOf("subject.all(s, t.x == 1)")).toMatch(
      /^condition: undeclared reference to 't' \(line 1, column 16\)/,
    );
    expect(problemOf("constructor == 1")).toMatch(/undeclared reference to 'constructor'/);
    expect(problemOf("__proto__ == 1")).toMatch(/undeclared reference to '__proto__'/);
    expect(problemOf("subject.all(s, s.x == 1) && s.y == 2")).toMatch(/undeclared reference to 's'/);
    expect(compileCondition("type(predicate.a) == string")).not.toHaveProperty("problem");
  });

  it("functions: the standard library only, with an overload of that shape", () => {
    expect(problemOf("foo(predicate)")).toBe("condition: unknown function 'foo' (line 1, column 1)");
    expect(problemOf("predicate.name.lowerAscii() == 'x'")).toBe(
      "condition: unknown function 'lowerAscii' (CEL's strings extension is not enabled) (line 1, column 15)",
    );
    expect(problemOf("subject.map(s, s.name).join(',') == ''")).toMatch(
      /unknown function 'join' \(CEL's strings/,
    );
    expect(problemOf("has(predicate)")).toBe(
      "condition: has() takes a field selection, as in has(predicate.a.b) (line 1, column 1)",
    );
    expect(problemOf("subject.all(1, true)")).toMatch(
      /^condition: all\(\) takes a variable name and an expression/,
    );
    expect(problemOf("size(subject, 1) == 1")).toBe(
      "condition: no overload of size() takes 2 arguments (line 1, column 1)",
    );
    expect(problemOf("predicateType.startsWith() ")).toMatch(
      /no overload of \.startsWith\(\) takes 0 arguments/,
    );
    expect(problemOf("1 + 'a' == 2")).toBe(
      "condition: no overload of '_+_' applies to (int, string) (line 1, column 2)",
    );
    expect(problemOf("predicateType.matches(1)")).toMatch(
      /no overload of 'matches' applies to \(string, int\)/,
    );
    expect(problemOf("Foo{a: 1} == predicate")).toMatch(
      /^condition: message construction \(Foo\{…\}\) is not supported/,
    );
  });

  it("integer literals fit 64 bits", () => {
    expect(problemOf("predicate.n == 9223372036854775808")).toBe(
      "condition: integer 9223372036854775808 does not fit 64 bits (line 1, column 16)",
    );
    expect(compileCondition("predicate.n == 9223372036854775807")).not.toHaveProperty("problem");
    expect(compileCondition("predicate.n == -9223372036854775808")).not.toHaveProperty("problem");
    expect(problemOf("predicate.n == 18446744073709551616u")).toMatch(
      /unsigned integer .* does not fit 64 bits/,
    );
  });

  it("size and nesting bounds", () => {
    const long = `predicateType == "${"a".repeat(CONDITION_LIMITS.sourceBytes)}"`;
    expect(problemOf(long)).toBe(`condition: longer than 4096 bytes (${long.length})`);
    const atBound = `predicateType == "${"a".repeat(CONDITION_LIMITS.sourceBytes - 19)}"`;
    expect(atBound.length).toBe(CONDITION_LIMITS.sourceBytes);
    expect(compileCondition(atBound)).not.toHaveProperty("problem");
    // bytes, not characters
    expect(problemOf(`predicateType == "${"é".repeat(2040)}"`)).toMatch(/^condition: longer than 4096 bytes/);

    const nested = (n: number) => `${"(".repeat(n)}true${")".repeat(n)}`;
    expect(compileCondition(nested(20))).not.toHaveProperty("problem");
    expect(problemOf(nested(2000))).toBe("condition: nested too deeply to parse");
    const deep = (n: number) => `${Array.from({ length: n }, () => "1").join(" + ")} == 1`;
    expect(compileCondition(deep(60))).not.toHaveProperty("problem");
    expect(problemOf(deep(70))).toMatch(/^condition: nested more than 64 levels deep/);

    const loops = (n: number) =>
      `${Array.from({ length: n }, (_, i) => `subject.all(v${i}, `).join("")}true${")".repeat(n)}`;
    expect(compileCondition(loops(3))).not.toHaveProperty("problem");
    expect(problemOf(loops(4))).toMatch(
      /^condition: comprehensions \(all, exists, exists_one, map, filter\) nested more than 3 deep \(line 1, column \d+\)$/,
    );
  });

  it("never throws on what is not a string", () => {
    expect(compileCondition(42 as unknown as string)).toEqual({ problem: "condition: not a string" });
    expect(compileCondition(undefined as unknown as string)).toEqual({ problem: "condition: not a string" });
  });
});

describe("comprehensions over subject and predicate", () => {
  const subjects = json([
    { name: "ghcr.io/acme/app", digest: { sha256: IMAGE_HEX } },
    { name: "ghcr.io/acme/app-debug", digest: { sha256: "ab".repeat(32), sha512: "cd".repeat(64) } },
  ]) as unknown[];

  it.each([
    [`subject.exists(s, s.digest.sha256 == "${IMAGE_HEX}")`, true],
    ["subject.exists(s, s.digest.sha256 == 'nope')", false],
    ["subject.all(s, s.name.startsWith('ghcr.io/acme/'))", true],
    ["subject.all(s, has(s.digest.sha512))", false],
    ["subject.exists_one(s, has(s.digest.sha512))", true],
    ["subject.all(s, s.digest.all(alg, alg in ['sha256', 'sha512']))", true],
    ["subject.all(s, s.digest.sha256.matches('^[a-f0-9]{64}$'))", true],
    ["subject.map(s, s.name).exists(n, n.endsWith('-debug'))", true],
    ["subject.filter(s, s.name.contains('debug')).size() == 1", true],
    ["subject.map(s, has(s.digest.sha512), s.name) == ['ghcr.io/acme/app-debug']", true],
    ["size(subject.filter(s, false)) == 0", true],
  ])("%s → %s", (source, value) => {
    expect(run(source, {}, subjects)).toEqual({ ok: true, value });
  });

  it("all() is false as soon as one element is, even past an error; an error otherwise", () => {
    expect(run("subject.all(s, s.digest.sha512 == 'x')", {}, subjects)).toEqual({ ok: true, value: false });
    expect(run("subject.all(s, s.digest.sha512 != 'x')", {}, subjects)).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/^no such key: sha512/),
    });
  });

  it("over maps: the keys", () => {
    const p = json({ labels: { team: "core", tier: "prod" } });
    expect(run("predicate.labels.all(k, k in ['team', 'tier'])", p)).toEqual({ ok: true, value: true });
    expect(run("predicate.labels.exists(k, predicate.labels[k] == 'prod')", p)).toEqual({
      ok: true,
      value: true,
    });
  });

  it("map() and filter() results are ordinary lists, also at 20 000 elements (the library alone overflows)", () => {
    const p = { list: Array.from({ length: 20_000 }, (_, i) => i) };
    expect(run("predicate.list.map(x, x).map(y, y).all(z, z >= 0.0)", p)).toEqual({ ok: true, value: true });
    expect(run("predicate.list.map(x, x * 2.0)[19999] == 39998", p)).toEqual({ ok: true, value: true });
    expect(run("predicate.list.filter(x, x < 3.0) == [0, 1, 2]", p)).toEqual({ ok: true, value: true });
    expect(run("predicate.list.map(x, x)[20000] == 0", p)).toMatchObject({ ok: false });
  });

  it("a comprehension over what is not a list or map is a problem", () => {
    expect(run("predicateType.all(c, true)", {})).toMatchObject({
      ok: false,
      problem: expect.stringMatching(/type mismatch: iterable vs string/),
    });
  });
});

describe("string functions", () => {
  const p = json({
    url: "https://github.com/acme/app/.github/workflows/release.yml@refs/tags/v1.4.2",
    u: "ünï😀",
  });

  it.each([
    ["predicate.url.startsWith('https://github.com/acme/')", true],
    ["predicate.url.startsWith('https://github.com/evil/')", false],
    ["predicate.url.endsWith('@refs/tags/v1.4.2')", true],
    ["predicate.url.contains('/.github/workflows/')", true],
    [
      "predicate.url.matches('^https://github\\\\.com/acme/[^/]+/\\\\.github/workflows/[^@]+@refs/tags/v[0-9.]+$')",
      true,
    ],
    ["predicate.url.matches('release')", true], // unanchored, as in CEL
    ["predicate.url.matches('^release')", false],
    ["size(predicate.u) == 4 && predicate.u.matches('^.{4}$')", true],
    ["predicate.u + '!' == 'ünï😀!'", true],
    ["string(1) + string(2.5) == '12.5'", true],
    ["bytes('abc') == b'abc'", true],
    ["timestamp(predicate.t) > timestamp('2026-01-01T00:00:00Z')", true],
  ])("%s → %s", (source, value) => {
    expect(run(source, { ...(p as object), t: "2026-03-01T10:00:00Z" })).toEqual({ ok: true, value });
  });

  it("an invalid pattern is an evaluation problem", () => {
    expect(run("predicate.url.matches('(')", p)).toEqual({
      ok: false,
      problem: "error parsing regexp: missing closing ): `(` (line 1, column 14)",
    });
  });

  it("RE2: no backtracking blow-up, and a pattern's compiled size is paid for", () => {
    const hostile = { s: `${"a".repeat(5000)}!` };
    expect(run("predicate.s.matches('^(a|aa)*$')", hostile)).toEqual({ ok: true, value: false });
    const { result } = evaluateConditionWithCost(compiled("predicate.s.matches('\\\\p{L}{1000}z')"), {
      predicateType: SLSA_V1,
      predicate: { s: "a".repeat(100_000) },
      subject: [],
    });
    expect(result).toEqual({ ok: false, problem: "cost limit exceeded (1000000 units)" });
  });
});

describe("the statement as input", () => {
  it("prototype-named keys are ordinary keys and pollute nothing", () => {
    const p = JSON.parse('{"__proto__": {"polluted": true}, "constructor": {"name": "x"}, "toString": 1}');
    expect(run("predicate['__proto__'].polluted && predicate.constructor.name == 'x'", p)).toEqual({
      ok: true,
      value: true,
    });
    expect(run("predicate.size() == 3 && !('hasOwnProperty' in predicate)", p)).toEqual({
      ok: true,
      value: true,
    });
    expect(run("predicate.valueOf == 1", p)).toEqual({
      ok: false,
      problem: "no such key: valueOf (line 1, column 10)",
    });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("refuses input beyond its bounds, as a problem", () => {
    const c = compiled("true");
    const evaluate = (predicate: unknown, subject: readonly unknown[] = []) =>
      evaluateCondition(c, { predicateType: SLSA_V1, predicate, subject });

    let deep: unknown = 1;
    for (let i = 0; i < CONDITION_LIMITS.inputDepth - 1; i++) deep = [deep];
    expect(evaluate(deep)).toEqual({ ok: true, value: true });
    expect(evaluate([deep])).toEqual({ ok: false, problem: "predicate too deep: more than 64 levels" });

    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(evaluate(cyclic)).toEqual({ ok: false, problem: "predicate too deep: more than 64 levels" });

    const values = CONDITION_LIMITS.inputValues;
    // the subject list counts too
    expect(evaluate(new Array(values - 2).fill(0))).toEqual({ ok: true, value: true });
    expect(evaluate(new Array(values - 1).fill(0))).toMatchObject({ ok: false });
    expect(evaluate(new Array(values).fill(0))).toEqual({
      ok: false,
      problem: "predicate too large: more than 100000 values",
    });
    expect(evaluate(new Array(values / 2).fill(0), new Array(values / 2).fill(0))).toEqual({
      ok: false,
      problem: "subject too large: more than 100000 values",
    });

    const long = "x".repeat(CONDITION_LIMITS.stringLength + 1);
    expect(evaluate({ s: long })).toEqual({
      ok: false,
      problem: "predicate has a string longer than 1048576 characters",
    });
    expect(evaluate({ [long]: 1 })).toEqual({
      ok: false,
      problem: "predicate has a key longer than 1048576 characters",
    });
  });

  it("refuses what is not JSON, without throwing", () => {
    const c = compiled("true");
    const evaluate = (statement: unknown) =>
      evaluateCondition(c, statement as { predicateType: string; predicate: unknown; subject: unknown[] });
    expect(evaluate({ predicateType: 1, predicate: {}, subject: [] })).toEqual({
      ok: false,
      problem: "the statement's predicateType is not a string",
    });
    expect(evaluate({ predicateType: "t", predicate: {}, subject: {} })).toEqual({
      ok: false,
      problem: "the statement's subject is not a list",
    });
    expect(evaluate({ predicateType: "t", predicate: { f: () => 1 }, subject: [] })).toEqual({
      ok: false,
      problem: "predicate is not JSON (function)",
    });
    expect(evaluate({ predicateType: "t", predicate: new Date(0), subject: [] })).toEqual({
      ok: false,
      problem: "predicate is not JSON",
    });
    const throwing = Object.defineProperty({}, "x", {
      enumerable: true,
      get() {
        throw new Error("boom");
      },
    });
    expect(evaluate({ predicateType: "t", predicate: throwing, subject: [] })).toEqual({
      ok: false,
      problem: "the statement is not JSON",
    });
    expect(evaluate(null)).toEqual({ ok: false, problem: "the statement is not an object" });
  });

  it("an unset predicate is an empty one (in-toto); holes in lists are not JSON", () => {
    const evaluate = (source: string, predicate: unknown, subject: readonly unknown[] = []) =>
      evaluateCondition(compiled(source), { predicateType: SLSA_V1, predicate, subject });
    expect(evaluate("predicate.size() == 0 && predicateType.endsWith('/v1')", undefined)).toEqual({
      ok: true,
      value: true,
    });
    expect(evaluate("true", { l: new Array(3) })).toEqual({
      ok: false,
      problem: "predicate is not JSON (undefined)",
    });
    expect(evaluate("true", {}, [SUBJECT[0], undefined])).toEqual({
      ok: false,
      problem: "subject is not JSON (undefined)",
    });
  });

  it("a condition not made by compileCondition is refused", () => {
    expect(evaluateCondition({ source: "true" }, { predicateType: "t", predicate: {}, subject: [] })).toEqual(
      {
        ok: false,
        problem: "not a compiled condition",
      },
    );
  });
});

describe("cost", () => {
  const list = { list: Array.from({ length: 1000 }, (_, i) => i) };
  const statement = (predicate: unknown) => ({ predicateType: SLSA_V1, predicate, subject: SUBJECT });

  it("every iteration is paid for: a loop's cost grows with its list", () => {
    const c = compiled("predicate.list.all(x, x >= 0.0)");
    const small = evaluateConditionWithCost(c, statement({ list: [1, 2, 3] }));
    const big = evaluateConditionWithCost(c, statement(list));
    expect(small.result).toEqual({ ok: true, value: true });
    expect(big.result).toEqual({ ok: true, value: true });
    expect(big.cost - small.cost).toBeGreaterThanOrEqual(997 * 5);
  });

  it("an early exit stops paying", () => {
    const c = compiled("predicate.list.exists(x, x == 0)");
    const { result, cost } = evaluateConditionWithCost(c, statement(list));
    expect(result).toEqual({ ok: true, value: true });
    expect(cost).toBeLessThan(1000 + 100); // the range once, one iteration
  });

  it("over the budget: a problem, and the work stops", () => {
    const c = compiled("predicate.list.all(x, predicate.list.all(y, predicate.list.all(z, true)))");
    const { result, cost } = evaluateConditionWithCost(c, statement(list));
    expect(result).toEqual({ ok: false, problem: "cost limit exceeded (1000000 units)" });
    expect(cost).toBeLessThan(CONDITION_LIMITS.cost + 2000);

    const lower = evaluateConditionWithCost(compiled("predicate.list.all(x, true)"), statement(list), 500);
    expect(lower.result).toEqual({ ok: false, problem: "cost limit exceeded (500 units)" });
  });

  it("a budget that is not a number of units is the limit", () => {
    const c = compiled("predicate.list.all(x, predicate.list.all(y, true))");
    for (const wrong of [Number.NaN, -1, Number.POSITIVE_INFINITY]) {
      expect(evaluateConditionWithCost(c, statement(list), wrong).result).toEqual({
        ok: false,
        problem: "cost limit exceeded (1000000 units)",
      });
    }
  });

  it("a budget above the limit is capped at the limit", () => {
    const c = compiled("predicate.list.all(x, predicate.list.all(y, true))");
    expect(evaluateConditionWithCost(c, statement(list), 1e12).result).toEqual({
      ok: false,
      problem: "cost limit exceeded (1000000 units)",
    });
  });

  it("an exhausted budget absorbed by || still ends the evaluation", () => {
    const c = compiled("predicate.list.all(x, predicate.list.all(y, predicate.list.all(z, true)) || true)");
    expect(evaluateConditionWithCost(c, statement(list)).result).toEqual({
      ok: false,
      problem: "cost limit exceeded (1000000 units)",
    });
  });

  it("strings: building is paid per character and bounded, reading per 10 characters", () => {
    const s = "a".repeat(CONDITION_LIMITS.stringLength / 2 + 1);
    expect(run("predicate.s + predicate.s != ''", { s })).toEqual({
      ok: false,
      problem: "builds a string longer than 1048576 characters (line 1, column 13)",
    });
    const read = evaluateConditionWithCost(
      compiled("predicate.s.startsWith('b')"),
      statement({ s: "a".repeat(10_000) }),
    );
    expect(read.result).toEqual({ ok: true, value: false });
    expect(read.cost).toBeGreaterThanOrEqual(1000);
    expect(read.cost).toBeLessThan(1100);
    const built = evaluateConditionWithCost(
      compiled("predicate.s + 'b' != ''"),
      statement({ s: "a".repeat(10_000) }),
    );
    expect(built.cost).toBeGreaterThanOrEqual(10_001);
  });

  it("equality and `in` pay for what they compare; a number key pays for the map it scans", () => {
    const big = {
      l: Array.from({ length: 5000 }, (_, i) => i),
      m: Object.fromEntries(list.list.map((i) => [`k${i}`, i])),
    };
    const eq = evaluateConditionWithCost(compiled("predicate.l == predicate.l"), statement(big));
    expect(eq.result).toEqual({ ok: true, value: true });
    expect(eq.cost).toBeGreaterThanOrEqual(10_000);
    const inList = evaluateConditionWithCost(compiled("-1 in predicate.l"), statement(big));
    expect(inList.result).toEqual({ ok: true, value: false });
    expect(inList.cost).toBeGreaterThanOrEqual(10_000);
    const byNumber = evaluateConditionWithCost(compiled("predicate.m[1] == 0"), statement(big));
    expect(byNumber.result).toMatchObject({ ok: false });
    expect(byNumber.cost).toBeGreaterThanOrEqual(1000);
    const byName = evaluateConditionWithCost(compiled("predicate.m['k1'] == 1"), statement(big));
    expect(byName.result).toEqual({ ok: true, value: true });
    expect(byName.cost).toBeLessThan(20);
  });

  it("int() of a long string is refused before BigInt parses it", () => {
    expect(run("int(predicate.s) > 0", { s: "1".repeat(1000) })).toEqual({
      ok: false,
      problem: "int overflow during type conversion (a string of 1000 characters) (line 1, column 1)",
    });
    expect(run("int(predicate.s) == 123", { s: "123" })).toEqual({ ok: true, value: true });
  });

  it("a time zone is paid for", () => {
    const tz = evaluateConditionWithCost(
      compiled("timestamp('2026-01-01T00:00:00Z').getHours('America/New_York') == 19"),
      statement({}),
    );
    expect(tz.result).toEqual({ ok: true, value: true });
    expect(tz.cost).toBeGreaterThanOrEqual(2000);
  });
});

describe("patternWeight: an upper bound of RE2's compiled size", () => {
  it.each([
    ["", 1],
    ["abc", 4],
    ["a{64}", 65],
    ["[a-f0-9]{64}", 65],
    ["\\p{L}{1000}", 1001],
    ["(ab){10}", 31],
    ["((a{10}){10}){10}", 1111],
    ["[]a]{5}", 6],
    ["[[:alpha:]]{3}", 4],
    ["\\{5}", 4],
    ["a{,5}", 6],
  ])("%s → %i", (pattern, weight) => {
    expect(patternWeight(pattern)).toBe(weight);
  });
});
