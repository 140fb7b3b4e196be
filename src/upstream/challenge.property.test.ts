import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type Challenge, parseChallenges } from "./challenge.ts";

// RFC 7230 tchar, and a scheme (a token starting with a letter, as the parser reads one).
const TCHAR = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";
const token = fc.string({ unit: fc.constantFrom(...TCHAR), minLength: 1, maxLength: 10 });
const scheme = fc
  .tuple(fc.constantFrom(..."aBzZ"), fc.string({ unit: fc.constantFrom(...TCHAR), maxLength: 8 }))
  .map(([a, b]) => a + b);
/** Param names that are not `__proto__` (see the report: that key cannot round-trip into a plain object). */
const paramName = token.filter((n) => n.toLowerCase() !== "__proto__");
/** Quoted-string content: any printable text including commas, '=', spaces, quotes and backslashes. */
const quotedValue = fc.string({
  unit: fc.constantFrom(..."ab =,;:/\"\\'@-_.", "é", "\t"),
  maxLength: 16,
});
const ws = fc.constantFrom("", " ", "  ", "\t");

type Param = { name: string; value: string; quoted: boolean };
const param: fc.Arbitrary<Param> = fc.oneof(
  fc.record({ name: paramName, value: quotedValue, quoted: fc.constant(true) }),
  fc.record({ name: paramName, value: token, quoted: fc.constant(false) }),
);
/** A challenge with at least one param; names are distinct case-insensitively (later ones overwrite). */
const challenge = fc.record({
  scheme,
  params: fc.uniqueArray(param, { minLength: 1, maxLength: 4, selector: (p) => p.name.toLowerCase() }),
});

const quote = (v: string) => `"${v.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

function render(challenges: { scheme: string; params: Param[] }[], gap: string[]): string {
  const g = (i: number) => gap[i % gap.length] ?? "";
  return challenges
    .map(
      (c, i) =>
        `${c.scheme} ${c.params
          .map((p, j) => `${p.name}${g(i + j)}=${g(i + j + 1)}${p.quoted ? quote(p.value) : p.value}`)
          .join(`${g(i + 2)},${g(i + 3)}`)}`,
    )
    .join(", ");
}

function expected(challenges: { scheme: string; params: Param[] }[]): Challenge[] {
  return challenges.map((c) => ({
    scheme: c.scheme.toLowerCase(),
    params: Object.fromEntries(c.params.map((p) => [p.name.toLowerCase(), p.value])),
  }));
}

describe("parseChallenges (property)", () => {
  it("never throws on arbitrary strings, and returns lowercase schemes and param names", () => {
    const headerChar = fc.constantFrom(...'Bearer realm="\\,  x=y\t', "é", "\u0000", "\n");
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 80 }),
          fc.string({ unit: "binary", maxLength: 80 }),
          fc.string({ unit: headerChar, maxLength: 80 }),
        ),
        (header) => {
          const out = parseChallenges(header);
          expect(Array.isArray(out)).toBe(true);
          for (const c of out) {
            expect(c.scheme).toBe(c.scheme.toLowerCase());
            expect(c.scheme).toMatch(/^[a-z][a-z0-9!#$%&'*+.^_`|~-]*$/);
            for (const k of Object.keys(c.params)) expect(k).toBe(k.toLowerCase());
            for (const v of Object.values(c.params)) expect(typeof v).toBe("string");
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("stays fast on long adversarial headers (no catastrophic backtracking)", () => {
    for (const header of [
      `Bearer a="${"\\".repeat(20_000)}`,
      `Bearer ${"a=b,".repeat(5_000)}`,
      `${"a ".repeat(10_000)}`,
      `Bearer a="${'\\"'.repeat(10_000)}`,
      `Bearer ${"a".repeat(20_000)}=`,
    ]) {
      const start = performance.now();
      parseChallenges(header);
      expect(performance.now() - start).toBeLessThan(500);
    }
  });

  it("round-trips generated well-formed challenges (quoted and token params, commas and escaped quotes)", () => {
    fc.assert(
      fc.property(
        fc.array(challenge, { minLength: 1, maxLength: 3 }),
        fc.array(ws, { minLength: 1, maxLength: 4 }),
        (cs, gaps) => {
          expect(parseChallenges(render(cs, gaps))).toEqual(expected(cs));
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("reads a registry Bearer challenge whatever its realm, service and scope hold", () => {
    fc.assert(
      fc.property(quotedValue, quotedValue, quotedValue, (realm, service, scope) => {
        const header = `Bearer realm=${quote(realm)},service=${quote(service)},scope=${quote(scope)}`;
        expect(parseChallenges(header)).toEqual([{ scheme: "bearer", params: { realm, service, scope } }]);
      }),
      { numRuns: 1000 },
    );
  });

  it("a `__proto__` or `constructor` param never pollutes prototypes (it is simply not kept as a param)", () => {
    fc.assert(
      fc.property(
        fc.constantFrom("__proto__", "__PROTO__", "constructor", "prototype"),
        quotedValue,
        (name, value) => {
          const [c] = parseChallenges(`Bearer ${name}=${quote(value)},realm="r"`);
          expect(c?.params.realm).toBe("r");
          expect(({} as Record<string, unknown>).polluted).toBeUndefined();
          expect(Object.getPrototypeOf(c?.params)).toBe(Object.prototype);
        },
      ),
      { numRuns: 100 },
    );
  });
});
