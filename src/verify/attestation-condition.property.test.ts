import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  CONDITION_LIMITS,
  type CompiledCondition,
  type ConditionResult,
  compileCondition,
  evaluateConditionWithCost,
} from "./attestation-condition.ts";

// Hostile predicates and expensive conditions stay within the limits: evaluation returns (a bool, a
// limit problem or an evaluation problem), never throws, and never spends more cost units than its
// budget. Counts only; the time a unit takes is measured outside the tests.

/** The problems a limit produces (the rest are ordinary evaluation problems: no such key, …). */
const LIMIT_PROBLEM =
  /^(cost limit exceeded \(\d+ units\)|(predicate|subject) too (deep|large): .*|(predicate|subject) has a (string|key) longer than \d+ characters|builds a string longer than \d+ characters.*|int overflow during type conversion \(a string of \d+ characters\).*)$/;

const PROTOTYPE_KEYS = [
  "__proto__",
  "constructor",
  "prototype",
  "toString",
  "valueOf",
  "hasOwnProperty",
  "__defineGetter__",
];

/** Deep nesting, in arrays or objects, on both sides of the depth limit. */
const deepValue = fc
  .record({ depth: fc.integer({ min: 1, max: CONDITION_LIMITS.inputDepth + 40 }), inObject: fc.boolean() })
  .map(({ depth, inObject }) => {
    let v: unknown = "leaf";
    for (let i = 0; i < depth; i++) v = inObject ? { a: v, b: i } : [v, i];
    return v;
  });

/** Huge lists (up to past the value limit), of numbers, strings or small objects, cheap to build. */
const hugeList = fc
  .record({
    size: fc.oneof(
      fc.integer({ min: 0, max: 2000 }),
      fc.integer({ min: 20_000, max: CONDITION_LIMITS.inputValues + 10 }),
    ),
    kind: fc.constantFrom("number", "string", "object", "mixed"),
  })
  .map(({ size, kind }) =>
    Array.from({ length: size }, (_, i) => {
      const k = kind === "mixed" ? ["number", "string", "object"][i % 3] : kind;
      return k === "number" ? i / 2 : k === "string" ? `v${i % 97}` : { i, s: "x" };
    }),
  );

/** Long strings (past the length limit), and short unicode ones (any code point, graphemes). */
const hostileString = fc.oneof(
  fc
    .record({
      n: fc.integer({ min: 0, max: CONDITION_LIMITS.stringLength + 16 }),
      unit: fc.constantFrom("a", "é", "😀", "ab"),
    })
    .map(({ n, unit }) => unit.repeat(Math.ceil(n / unit.length))),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: "grapheme", maxLength: 40 }),
);

/** Objects whose keys are prototype names, parsed as JSON.parse does (own properties). */
const prototypeNamed = fc
  .array(fc.tuple(fc.constantFrom(...PROTOTYPE_KEYS), fc.jsonValue({ maxDepth: 2 })), { maxLength: 7 })
  .map((entries) =>
    JSON.parse(`{${entries.map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`).join(",")}}`),
  );

const hostilePredicate = fc.record({
  l: hugeList,
  s: hostileString,
  d: deepValue,
  m: prototypeNamed,
  j: fc.jsonValue({ maxDepth: 4, stringUnit: "binary" }),
});

/** Conditions that are expensive on such predicates (and some that are cheap or wrong). */
const EXPENSIVE = [
  "predicate.l.all(x, predicate.l.all(y, predicate.l.exists(z, z == x)))",
  "predicate.l.exists(x, predicate.l.exists(y, false))",
  "predicate.l.map(x, predicate.l.map(y, [x, y])).size() > 0",
  "predicate.l.map(x, x).map(y, y).map(z, z).exists(w, false)",
  "predicate.l.filter(x, x == predicate.l).size() == 0",
  "predicate.l.all(x, predicate.l == predicate.l)",
  "predicate.l.exists(x, x in predicate.l && false)",
  "predicate.l.all(x, predicate.nope == 1)",
  "predicate.s + predicate.s + predicate.s + predicate.s + predicate.s == predicate.s",
  "predicate.l.all(x, string(x) + predicate.s + predicate.s != '')",
  "predicate.l.map(x, predicate.s + predicate.s).size() >= 0",
  "size(predicate.s) > 0 && predicate.s.startsWith(predicate.s + 'x')",
  "predicate.s.matches('^(a|aa|aaa)*b$') || predicate.s.matches('\\\\p{L}{1000}')",
  "predicate.l.all(x, predicate.s.matches('[ab]{1000}c'))",
  "predicate.d == predicate.d && predicate.d != null",
  "predicate.j == predicate.j && has(predicate.j.x)",
  "predicate.m.all(k, predicate.m[k] == predicate.m)",
  "predicate['__proto__'] == predicate.constructor || has(predicate.m.prototype)",
  "predicate.m[1] == 0 || 1 in predicate.m || predicate.l[0] == 0",
  "int(predicate.s) > 0 || double(predicate.s) > 0.0",
  "subject.all(s, s.digest.sha256 == predicate.s) && subject.exists(s, s in predicate.l)",
  "predicate.l.all(x, timestamp('2026-01-01T00:00:00Z').getHours('Europe/Paris') == 1)",
  "(predicate.l + predicate.l + predicate.l + predicate.l).all(x, true)",
  "predicate.l.exists_one(x, x == predicate.s)",
];

const condition = fc.oneof(
  fc.constantFrom(...EXPENSIVE),
  fc
    .array(fc.constantFrom(...EXPENSIVE), { minLength: 2, maxLength: 3 })
    .map((parts) => parts.map((p) => `(${p})`).join(" || ")),
);

const COMPILED = new Map<string, CompiledCondition>();
function compiled(source: string): CompiledCondition {
  let c = COMPILED.get(source);
  if (c === undefined) {
    const made = compileCondition(source);
    if ("problem" in made) throw new Error(`${source}: ${made.problem}`);
    c = made;
    COMPILED.set(source, c);
  }
  return c;
}

const SUBJECT = [{ name: "ghcr.io/acme/app", digest: { sha256: "ab".repeat(32) } }];

function expectBounded(result: ConditionResult, cost: number, limit: number): void {
  if (result.ok) {
    expect(typeof result.value).toBe("boolean");
    expect(cost).toBeLessThanOrEqual(limit);
    return;
  }
  expect(typeof result.problem).toBe("string");
  expect(result.problem.length).toBeLessThan(400);
  expect(result.problem).not.toMatch(/\n|\bat .*:\d+:\d+/); // one line, no stack frames
  if (result.problem.startsWith("cost limit exceeded")) expect(cost).toBeGreaterThan(limit);
  else expect(cost).toBeLessThanOrEqual(limit);
}

describe("hostile predicates and expensive conditions stay within the limits", () => {
  it("evaluation returns (a bool, a limit problem or an evaluation problem) within a small budget", () => {
    const limit = 50_000;
    let limited = 0;
    fc.assert(
      fc.property(condition, hostilePredicate, (source, predicate) => {
        const { result, cost } = evaluateConditionWithCost(
          compiled(source),
          { predicateType: "https://slsa.dev/provenance/v1", predicate, subject: SUBJECT },
          limit,
        );
        expectBounded(result, cost, limit);
        if (!result.ok && LIMIT_PROBLEM.test(result.problem)) limited++;
      }),
      { numRuns: 60 },
    );
    expect(limited).toBeGreaterThan(0); // the generators do reach the limits
  });

  it("and within the real budget", () => {
    fc.assert(
      fc.property(fc.constantFrom(...EXPENSIVE), hostilePredicate, (source, predicate) => {
        const { result, cost } = evaluateConditionWithCost(compiled(source), {
          predicateType: "t",
          predicate,
          subject: SUBJECT,
        });
        expectBounded(result, cost, CONDITION_LIMITS.cost);
      }),
      { numRuns: 6 },
    );
  });

  it("the meter is exact: a budget of the cost a run took gives the same result, one unit less a limit problem", () => {
    fc.assert(
      fc.property(condition, hostilePredicate, (source, predicate) => {
        const statement = { predicateType: "t", predicate, subject: SUBJECT };
        const c = compiled(source);
        const first = evaluateConditionWithCost(c, statement, 20_000);
        if (first.result.ok === false && LIMIT_PROBLEM.test(first.result.problem)) return; // nothing to replay
        const again = evaluateConditionWithCost(c, statement, first.cost);
        expect(again).toEqual(first);
        const less = evaluateConditionWithCost(c, statement, first.cost - 1);
        expect(less.result).toEqual({ ok: false, problem: `cost limit exceeded (${first.cost - 1} units)` });
      }),
      { numRuns: 40 },
    );
  });

  it("a list's loop pays for every element it visits", () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 5000 }), (n) => {
        const predicate = { l: Array.from({ length: n }, (_, i) => i) };
        const statement = { predicateType: "t", predicate, subject: [] };
        const loop = evaluateConditionWithCost(compiled("predicate.l.map(x, x).all(y, y >= 0.0)"), statement);
        expect(loop.result).toEqual({ ok: true, value: true });
        // map: the range and one append per element; all: the range and one body per element
        expect(loop.cost).toBeGreaterThanOrEqual(2 * n + 7 * n);
      }),
      { numRuns: 20 },
    );
  });
});

describe("compileCondition never throws", () => {
  const TOKENS = [
    "predicate",
    "subject",
    "predicateType",
    ".",
    "a",
    "(",
    ")",
    "[",
    "]",
    "{",
    "}",
    ",",
    ":",
    "?",
    "==",
    "!=",
    "&&",
    "||",
    "!",
    "-",
    "+",
    "*",
    " in ",
    "1",
    "1u",
    "1.5",
    "'s'",
    'b"x"',
    "true",
    "null",
    "has",
    "all",
    "exists",
    "map",
    "filter",
    "size",
    "matches",
    "x",
    " ",
    "\n",
  ];
  const soup = fc.array(fc.constantFrom(...TOKENS), { maxLength: 40 }).map((t) => t.join(""));

  it("on token soup and arbitrary text; what compiles evaluates without throwing", () => {
    fc.assert(
      fc.property(
        fc.oneof(soup, fc.string({ unit: "binary", maxLength: 200 })),
        fc.jsonValue({ maxDepth: 3 }),
        (source, predicate) => {
          const c = compileCondition(source);
          if ("problem" in c) {
            expect(c.problem).toMatch(/^condition: /);
            expect(c.problem).not.toMatch(/\n/);
            return;
          }
          const { result, cost } = evaluateConditionWithCost(c, {
            predicateType: "t",
            predicate,
            subject: [],
          });
          expectBounded(result, cost, CONDITION_LIMITS.cost);
        },
      ),
      { numRuns: 300 },
    );
  });
});
