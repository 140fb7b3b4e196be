import { describe, expect, it } from "vitest";
import { parseStrictJson } from "./strict-json.ts";

// Direct tests of the strict JSON reader: its grammar edges, its escapes and surrogate rules, its
// depth limit and the exact problems it reports. (manifest.test.ts has the differential properties.)

const parse = (text: string, maxDepth?: number) => parseStrictJson(Buffer.from(text), maxDepth);
const parsed = (text: string) => {
  const r = parse(text);
  if (!r.ok) throw new Error(`expected ${JSON.stringify(text)} to parse: ${r.problem}`);
  return r.value;
};
const problemOf = (text: string, maxDepth?: number) => {
  const r = parse(text, maxDepth);
  return r.ok ? undefined : r.problem;
};

describe("parseStrictJson: whitespace", () => {
  it.each([" ", "\t", "\n", "\r", " \t\r\n "])("skips %j everywhere JSON allows it", (ws) => {
    const text = `${ws}{${ws}"a"${ws}:${ws}[${ws}1${ws},${ws}2${ws}]${ws},${ws}"b"${ws}:${ws}{${ws}}${ws}}${ws}`;
    expect(parsed(text)).toEqual({ a: [1, 2], b: {} });
    expect(parsed(`${ws}[${ws}]${ws}`)).toEqual([]);
    expect(parsed(`${ws}7${ws}`)).toBe(7);
  });

  it.each(["\u000b", "\u000c", "\u00a0", "\u2028", "\ufeff"])("does not treat %j as whitespace", (ws) => {
    expect(problemOf(`1${ws}`)).toBe("unexpected text at offset 1");
    expect(problemOf(`[1${ws}]`)).toMatch(/expected ',' or '\]' at offset 2/);
  });
});

describe("parseStrictJson: scalars", () => {
  it.each([
    ["0", 0],
    ["-0", -0],
    ["12", 12],
    ["-12", -12],
    ["1.5", 1.5],
    ["1e5", 1e5],
    ["1E5", 1e5],
    ["1e+5", 1e5],
    ["1e-5", 1e-5],
    ["-1.25E-2", -0.0125],
    ["true", true],
    ["false", false],
    ["null", null],
    ['""', ""],
  ])("reads %s", (text, value) => {
    expect(parsed(text)).toBe(value);
  });

  it.each([
    ["-", "unexpected text at offset 0"],
    ["+1", "unexpected text at offset 0"],
    [".5", "unexpected text at offset 0"],
    ["01", "unexpected text at offset 1"],
    ["1.", "unexpected text at offset 1"],
    ["1e", "unexpected text at offset 1"],
    ["tru", "unexpected text at offset 0"],
    ["fals", "unexpected text at offset 0"],
    ["nul", "unexpected text at offset 0"],
    ["True", "unexpected text at offset 0"],
    ["[nul]", "unexpected text at offset 1"],
    ["truex", "unexpected text at offset 4"],
    ["", "unexpected text at offset 0"],
    ["   ", "unexpected text at offset 3"],
  ])("refuses %j", (text, problem) => {
    expect(problemOf(text)).toBe(problem);
  });
});

describe("parseStrictJson: strings and escapes", () => {
  it("decodes every short escape", () => {
    expect(parsed(String.raw`"a\"b\\c\/d\be\ff\ng\rh\ti"`)).toBe('a"b\\c/d\be\ff\ng\rh\ti');
  });

  it("decodes \\u escapes and keeps the text around them", () => {
    expect(parsed(String.raw`"x\u0041y"`)).toBe("xAy");
    expect(parsed(String.raw`"\u00e9\u00E9"`)).toBe("éé");
    expect(parsed(String.raw`"\ud7ff"`)).toBe("\ud7ff");
    expect(parsed(String.raw`"\ue000"`)).toBe("\ue000");
    expect(parsed(String.raw`"\uffff"`)).toBe("\uffff");
  });

  it("decodes surrogate pairs, including the range ends", () => {
    expect(parsed(String.raw`"\ud83d\ude00!"`)).toBe("😀!");
    expect(parsed(String.raw`"\ud800\udc00"`)).toBe("\u{10000}");
    expect(parsed(String.raw`"\udbff\udfff"`)).toBe("\u{10ffff}");
    expect(parsed('"😀"')).toBe("😀");
  });

  it.each([
    String.raw`"\ud800"`,
    String.raw`"\udbff"`,
    String.raw`"\ud800x"`,
    String.raw`"\ud800\n"`,
    String.raw`"\ud800\\u"`,
    String.raw`"\ud800u0041"`,
    String.raw`"\ud800xudc00"`,
    String.raw`"\ud800\u0041"`,
    String.raw`"\ud800\udbff"`,
    String.raw`"\ud800\ue000"`,
    String.raw`"\ud800\ud800"`,
    String.raw`"\udc00"`,
    String.raw`"\udfff"`,
    String.raw`"\udc00\ud800"`,
  ])("refuses the lone surrogate in %s", (text) => {
    expect(problemOf(text)).toBe("lone surrogate escape");
  });

  it.each([
    [String.raw`"\x41"`, "invalid escape at offset 1"],
    [String.raw`"ab\'"`, "invalid escape at offset 3"],
    [String.raw`"\U0041"`, "invalid escape at offset 1"],
    [String.raw`"\u12x4"`, String.raw`invalid \u escape at offset 3`],
    [String.raw`"\u-123"`, String.raw`invalid \u escape at offset 3`],
    [String.raw`"\u 123"`, String.raw`invalid \u escape at offset 3`],
    [String.raw`"\u123"`, String.raw`invalid \u escape at offset 3`],
    [String.raw`"\ud800\u12"`, String.raw`invalid \u escape at offset 9`],
    [String.raw`"\u`, String.raw`invalid \u escape at offset 3`],
    ['"abc', "unterminated string"],
    ['"', "unterminated string"],
    ['"\\', "invalid escape at offset 1"],
    ['"a\u0001"', "control character in a string at offset 2"],
    ['"a\u001f"', "control character in a string at offset 2"],
  ])("refuses %j", (text, problem) => {
    expect(problemOf(text)).toBe(problem);
  });

  it("accepts characters from U+0020 up, raw", () => {
    expect(parsed('" \u007f\u0080"')).toBe(" \u007f\u0080");
  });
});

describe("parseStrictJson: objects and arrays", () => {
  it("reads nested values", () => {
    expect(parsed('{"a":{"b":[1,{"c":null}]},"d":"e"}')).toEqual({ a: { b: [1, { c: null }] }, d: "e" });
  });

  it.each([
    ['{"a" 1}', "expected ':' at offset 5"],
    ['{"a":1 "b":2}', "expected ',' or '}' at offset 7"],
    ['{"a":1', "expected ',' or '}' at offset 6"],
    ['{"a":1]', "expected ',' or '}' at offset 6"],
    ["[1 2]", "expected ',' or ']' at offset 3"],
    ["[1", "expected ',' or ']' at offset 2"],
    ["[1}", "expected ',' or ']' at offset 2"],
    ["[1,]", "unexpected text at offset 3"],
    ["{1:2}", "expected a key at offset 1"],
    ["{", "expected a key at offset 1"],
    ['{"a":1}x', "unexpected text at offset 7"],
    ['{"a":1} {}', "unexpected text at offset 8"],
  ])("refuses %j", (text, problem) => {
    expect(problemOf(text)).toBe(problem);
  });

  it("reports a duplicate key, bounded to 100 characters", () => {
    expect(problemOf('{"a":1,"b":2,"a":3}')).toBe('duplicate key "a"');
    const long = "k".repeat(150);
    expect(problemOf(`{"${long}":1,"${long}":2}`)).toBe(`duplicate key "${"k".repeat(100)}"`);
    // Escapes are decoded before comparing: "\u0061" is "a".
    expect(problemOf(String.raw`{"a":1,"\u0061":2}`)).toBe('duplicate key "a"');
  });

  it("gives objects a null prototype", () => {
    const v = parsed('{"constructor":1}');
    expect(Object.getPrototypeOf(v)).toBeNull();
    expect(Object.getPrototypeOf(parsed("{}"))).toBeNull();
  });
});

describe("parseStrictJson: nesting depth", () => {
  const arrays = (n: number) => `${"[".repeat(n)}${"]".repeat(n)}`;
  const objects = (n: number) => `${'{"a":'.repeat(n - 1)}{}${"}".repeat(n - 1)}`;
  it.each([
    ["arrays", arrays],
    ["objects", objects],
  ])("refuses %s nested deeper than maxDepth, exactly at the limit", (_kind, text) => {
    expect(parse(text(3), 3).ok).toBe(true);
    expect(problemOf(text(4), 3)).toBe("nested deeper than 3 levels");
    expect(parse(text(64)).ok).toBe(true);
    expect(problemOf(text(65))).toBe("nested deeper than 64 levels");
    expect(problemOf(text(1), 0)).toBe("nested deeper than 0 levels");
  });

  it("counts depth across mixed arrays and objects", () => {
    expect(parse('[{"a":[1]}]', 3).ok).toBe(true);
    expect(problemOf('[{"a":[{}]}]', 3)).toBe("nested deeper than 3 levels");
    expect(problemOf('{"a":[{"b":{}}]}', 3)).toBe("nested deeper than 3 levels");
  });

  it("does not turn an internal error (a stack overflow without a depth limit) into a problem", () => {
    const n = 1_000_000;
    expect(() => parse(`${"[".repeat(n)}${"]".repeat(n)}`, Number.POSITIVE_INFINITY)).toThrow(RangeError);
  });
});

describe("parseStrictJson: bytes", () => {
  it.each([[[0xff]], [[0x22, 0xc3, 0x22]], [[0x22, 0xed, 0xa0, 0x80, 0x22]], [[0x22, 0xc0, 0xaf, 0x22]]])(
    "refuses non-UTF-8 bytes %j",
    (bytes) => {
      expect(parseStrictJson(Uint8Array.from(bytes))).toEqual({ ok: false, problem: "not valid UTF-8" });
    },
  );

  it("refuses a byte-order mark, and only at the start", () => {
    expect(parseStrictJson(Uint8Array.from([0xef, 0xbb, 0xbf, 0x31]))).toEqual({
      ok: false,
      problem: "starts with a byte-order mark",
    });
    expect(parsed('"\ufeff"')).toBe("\ufeff");
  });
});
