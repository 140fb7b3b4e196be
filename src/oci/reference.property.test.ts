import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { OciError } from "./errors.ts";
import {
  isDigest,
  isValidName,
  isValidTag,
  MAX_NAME_LENGTH,
  parseDigest,
  parseImageReference,
  parseName,
  parseReference,
  parseTag,
} from "./reference.ts";

// ---- an independent oracle: the distribution-spec v1.1 grammar, as a hand-written scanner ---------

const isLowerAlnum = (ch: string) => (ch >= "a" && ch <= "z") || (ch >= "0" && ch <= "9");
const isAlnum = (ch: string) => isLowerAlnum(ch) || (ch >= "A" && ch <= "Z");
const isHex = (ch: string) => (ch >= "a" && ch <= "f") || (ch >= "0" && ch <= "9");

/** `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`, scanned left to right. */
function oracleComponent(s: string): boolean {
  let i = 0;
  const alnumRun = () => {
    const start = i;
    while (i < s.length && isLowerAlnum(s[i] as string)) i++;
    return i > start;
  };
  if (!alnumRun()) return false;
  while (i < s.length) {
    const ch = s[i];
    if (ch === ".") i += 1;
    else if (ch === "_") i += s[i + 1] === "_" ? 2 : 1;
    else if (ch === "-") while (s[i] === "-") i++;
    else return false;
    if (!alnumRun()) return false;
  }
  return true;
}

function oracleName(s: string): boolean {
  return s.length >= 1 && s.length <= MAX_NAME_LENGTH && s.split("/").every(oracleComponent);
}

function oracleTag(s: string): boolean {
  if (s.length < 1 || s.length > 128) return false;
  const first = s[0] as string;
  if (!(isAlnum(first) || first === "_")) return false;
  for (const ch of s.slice(1)) if (!(isAlnum(ch) || ch === "_" || ch === "." || ch === "-")) return false;
  return true;
}

function oracleDigest(s: string): boolean {
  const colon = s.indexOf(":");
  if (colon === -1) return false;
  const algorithm = s.slice(0, colon);
  const hex = s.slice(colon + 1);
  const want = algorithm === "sha256" ? 64 : algorithm === "sha512" ? 128 : -1;
  return hex.length === want && [...hex].every(isHex);
}

// ---- generators -----------------------------------------------------------------------------------

const lowerAlnum = fc.constantFrom(..."abcxyz0189");
const alnumRun = fc.string({ unit: lowerAlnum, minLength: 1, maxLength: 6 });
const separator = fc.oneof(
  fc.constantFrom(".", "_", "__"),
  fc.string({ unit: fc.constant("-"), minLength: 1, maxLength: 3 }),
);
const component = fc
  .tuple(alnumRun, fc.array(fc.tuple(separator, alnumRun), { maxLength: 3 }))
  .map(([head, rest]) => head + rest.map(([sep, run]) => sep + run).join(""));
const validName = fc
  .array(component, { minLength: 1, maxLength: 4 })
  .map((parts) => parts.join("/"))
  .filter((n) => n.length <= MAX_NAME_LENGTH);

const tagChar = fc.constantFrom(..."aZ09_.-");
const validTag = fc
  .tuple(fc.constantFrom(..."aZ9_"), fc.string({ unit: tagChar, maxLength: 127 }))
  .map(([a, b]) => a + b);

const hexString = (n: number) =>
  fc.string({ unit: fc.constantFrom(..."0123456789abcdef"), minLength: n, maxLength: n });
const validDigest = fc.oneof(
  hexString(64).map((h) => `sha256:${h}`),
  hexString(128).map((h) => `sha512:${h}`),
);

/** Characters that make the interesting near-misses: separators, path tricks, case, unicode look-alikes. */
const trickyChar = fc.constantFrom(
  ..."aA0z9_.-/:@%2Ff\\ \t\n\r\u0000?#+=",
  "\u212a" /* KELVIN SIGN: lowercases to "k" */,
  "\u0130" /* İ */,
  "é",
  "\u200b",
  "\ufeff",
  "ａ" /* fullwidth a */,
);
const trickyString = fc.string({ unit: trickyChar, maxLength: 24 });
const anyString = fc.oneof(
  trickyString,
  fc.string({ maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
);

const junk = fc.constantFrom(
  "..",
  "%2F",
  "%2f",
  "%2e%2e",
  "//",
  "\\",
  "/",
  " ",
  "\n",
  "\t",
  "\u0000",
  "A",
  ".",
  "_",
  "-",
  "___",
  "?",
  "#",
  ":",
  "@",
);

/** Inserts `piece` into `s` at a generated position. */
const insertInto = (s: fc.Arbitrary<string>) =>
  fc.tuple(s, junk, fc.nat()).map(([base, piece, at]) => {
    const i = at % (base.length + 1);
    return base.slice(0, i) + piece + base.slice(i);
  });

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof OciError ? err.code : `not-oci: ${String(err)}`;
  }
  return undefined;
}

const RUNS = { numRuns: 1500 };

describe("the oracle itself", () => {
  it("agrees with the spec on hand-picked cases", () => {
    for (const ok of ["a", "a/b", "a.b", "a_b", "a__b", "a---b", "x0/y-1/z.2"])
      expect(oracleName(ok)).toBe(true);
    for (const bad of [
      "",
      "A",
      "a/",
      "/a",
      "a//b",
      "a..b",
      "a___b",
      "_a",
      "a-",
      "a.-b",
      "a\\b",
      "a%2Fb",
      "a\n",
    ])
      expect(oracleName(bad)).toBe(false);
    expect(oracleTag("_")).toBe(true);
    expect(oracleTag("-a")).toBe(false);
    expect(oracleTag("a".repeat(129))).toBe(false);
    expect(oracleDigest(`sha256:${"f".repeat(64)}`)).toBe(true);
    expect(oracleDigest(`sha256:${"F".repeat(64)}`)).toBe(false);
    expect(oracleDigest(`sha512:${"0".repeat(64)}`)).toBe(false);
  });
});

describe("repository names (property)", () => {
  it("isValidName agrees with the grammar oracle on generated near-misses and arbitrary strings", () => {
    fc.assert(
      fc.property(fc.oneof(validName, insertInto(validName), trickyString, anyString), (s) => {
        expect(isValidName(s)).toBe(oracleName(s));
      }),
      RUNS,
    );
  });

  it("accepts every name the grammar generates, returning it unchanged", () => {
    fc.assert(
      fc.property(validName, (name) => {
        expect(parseName(name)).toBe(name);
      }),
      RUNS,
    );
  });

  it("parseName returns the input or throws NAME_INVALID (never another error)", () => {
    fc.assert(
      fc.property(fc.oneof(insertInto(validName), anyString), (s) => {
        const code = codeOf(() => parseName(s));
        if (code === undefined) expect(parseName(s)).toBe(s);
        else expect(code).toBe("NAME_INVALID");
      }),
      RUNS,
    );
  });

  it("never accepts leading/trailing junk, `..`, `%2F`, `//`, backslash or upper case", () => {
    const poisoned = fc.oneof(
      fc.tuple(validName, junk).map(([n, j]) => n + j),
      fc.tuple(junk, validName).map(([j, n]) => j + n),
      fc
        .tuple(validName, fc.constantFrom("..", "%2F", "%2f", "//", "\\", "%2e%2e"), validName)
        .map(([a, j, b]) => `${a}${j}${b}`),
      fc
        .tuple(validName, fc.nat())
        .map(([n, i]) => {
          const at = i % n.length;
          return n.slice(0, at) + n.charAt(at).toUpperCase() + n.slice(at + 1);
        })
        .filter((n) => /[A-Z]/.test(n)),
    );
    fc.assert(
      fc.property(poisoned, (s) => {
        // "a" + "." + "b"-style joins can still be valid (a single separator); the oracle decides those.
        const mustRefuse =
          /\.\.|%|\/\/|\\|[A-Z]|^[^a-z0-9]|[^a-z0-9]$|\s|\0|[?#:@]|___/.test(s) || s.length > MAX_NAME_LENGTH;
        if (mustRefuse) expect(codeOf(() => parseName(s))).toBe("NAME_INVALID");
        expect(isValidName(s)).toBe(oracleName(s));
      }),
      RUNS,
    );
  });

  it("the length bound is exact", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 400 }), (n) => {
        expect(isValidName("a".repeat(n))).toBe(n <= MAX_NAME_LENGTH);
      }),
      { numRuns: 200 },
    );
  });
});

describe("tags (property)", () => {
  it("isValidTag agrees with the grammar oracle", () => {
    fc.assert(
      fc.property(fc.oneof(validTag, insertInto(validTag), trickyString, anyString), (s) => {
        expect(isValidTag(s)).toBe(oracleTag(s));
      }),
      RUNS,
    );
  });

  it("parseTag returns the input or throws TAG_INVALID", () => {
    fc.assert(
      fc.property(fc.oneof(validTag, insertInto(validTag), anyString), (s) => {
        const code = codeOf(() => parseTag(s));
        if (oracleTag(s)) {
          expect(code).toBeUndefined();
          expect(parseTag(s)).toBe(s);
        } else expect(code).toBe("TAG_INVALID");
      }),
      RUNS,
    );
  });

  it("a tag of 129+ characters is refused however it is made", () => {
    fc.assert(
      fc.property(fc.string({ unit: tagChar, minLength: 129, maxLength: 300 }), (rest) => {
        expect(isValidTag(`a${rest}`)).toBe(false);
      }),
      { numRuns: 200 },
    );
  });
});

describe("digests (property)", () => {
  const nearDigest = fc.oneof(
    validDigest.map((d) => d.toUpperCase()),
    validDigest.map((d) => `${d}0`),
    validDigest.map((d) => d.slice(0, -1)),
    validDigest.map((d) => ` ${d}`),
    validDigest.map((d) => `${d}\n`),
    validDigest.map((d) => d.replace(":", "%3A")),
    validDigest.map((d) => d.replace(/^sha(256|512)/, "SHA$1")),
    hexString(64).map((h) => `sha512:${h}`),
    hexString(128).map((h) => `sha256:${h}`),
    hexString(32).map((h) => `md5:${h}`),
    fc
      .tuple(hexString(64), fc.constantFrom("g", "G", "/", "=", "\u0660"))
      .map(([h, c]) => `sha256:${h.slice(1)}${c}`),
    insertInto(validDigest),
  );

  it("isDigest agrees with the oracle; parseDigest returns the input or throws DIGEST_INVALID", () => {
    fc.assert(
      fc.property(fc.oneof(validDigest, nearDigest, anyString), (s) => {
        expect(isDigest(s)).toBe(oracleDigest(s));
        const code = codeOf(() => parseDigest(s));
        if (oracleDigest(s)) {
          expect(code).toBeUndefined();
          expect(parseDigest(s)).toBe(s);
        } else expect(code).toBe("DIGEST_INVALID");
      }),
      RUNS,
    );
  });
});

describe("references (property)", () => {
  it("parseReference: a digest iff it contains ':', a tag otherwise, each by its oracle; only coded errors", () => {
    fc.assert(
      fc.property(
        fc.oneof(validTag, validDigest, insertInto(validTag), insertInto(validDigest), anyString),
        (s) => {
          const code = codeOf(() => parseReference(s));
          if (s.includes(":")) {
            if (oracleDigest(s)) expect(parseReference(s)).toEqual({ kind: "digest", digest: s });
            else expect(code).toBe("DIGEST_INVALID");
          } else if (oracleTag(s)) expect(parseReference(s)).toEqual({ kind: "tag", tag: s });
          else expect(code).toBe("TAG_INVALID");
        },
      ),
      RUNS,
    );
  });
});

describe("parseImageReference (property)", () => {
  const registry = fc.constantFrom("docker.io", "ghcr.io", "localhost", "127.0.0.1:5000", "Reg.Example.COM");
  const wellFormed = fc
    .tuple(fc.option(registry), validName, fc.option(validTag), fc.option(validDigest))
    .map(([r, n, t, d]) => ({
      text: `${r === null ? "" : `${r}/`}${n}${t === null ? "" : `:${t}`}${d === null ? "" : `@${d}`}`,
      r,
      n,
      t,
      d,
    }));

  it("reads every well-formed reference back into its parts", () => {
    fc.assert(
      fc.property(wellFormed, ({ text, r, n, t, d }) => {
        // A one-segment name with no registry whose first segment looks like a host is read as a registry;
        // the generator's names have no "." in their first segment only sometimes, so compare loosely.
        const firstSegment = n.split("/")[0] as string;
        fc.pre(
          r !== null || !(firstSegment.includes(".") || firstSegment === "localhost") || !n.includes("/"),
        );
        const ref = parseImageReference(text);
        expect(ref.registry).toBe(r === null ? undefined : r.toLowerCase());
        expect(ref.name).toBe(n);
        expect(ref.reference).toEqual(
          d !== null ? { kind: "digest", digest: d } : { kind: "tag", tag: t ?? "latest" },
        );
      }),
      RUNS,
    );
  });

  it("never throws anything but an OciError on arbitrary strings, and what it accepts is valid", () => {
    const mangled = fc.oneof(
      anyString,
      wellFormed.map((w) => w.text),
      insertInto(wellFormed.map((w) => w.text)),
      fc
        .tuple(
          trickyString,
          fc.constantFrom("/", ":", "@"),
          trickyString,
          fc.constantFrom("/", ":", "@"),
          trickyString,
        )
        .map((parts) => parts.join("")),
    );
    fc.assert(
      fc.property(mangled, (s) => {
        let ref: ReturnType<typeof parseImageReference>;
        try {
          ref = parseImageReference(s);
        } catch (err) {
          expect(err).toBeInstanceOf(OciError);
          expect(["NAME_INVALID", "TAG_INVALID", "DIGEST_INVALID"]).toContain((err as OciError).code);
          return;
        }
        expect(oracleName(ref.name)).toBe(true);
        if (ref.reference.kind === "tag") expect(oracleTag(ref.reference.tag)).toBe(true);
        else expect(oracleDigest(ref.reference.digest)).toBe(true);
        if (ref.registry !== undefined) {
          expect(ref.registry).not.toMatch(/[/@]/);
          expect(ref.registry === "localhost" || /[.:]/.test(ref.registry)).toBe(true);
        }
      }),
      { numRuns: 3000 },
    );
  });
});
