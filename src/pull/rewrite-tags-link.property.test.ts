import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isValidName, isValidTag } from "../oci/index.ts";
import type { PullTarget } from "./pull-target.ts";
import { rewriteTagsLink } from "./tag-listing.ts";

const run = fc.string({ unit: fc.constantFrom(..."abz09"), minLength: 1, maxLength: 5 });
const validName = fc
  .array(fc.tuple(run, fc.option(fc.tuple(fc.constantFrom(".", "_", "__", "-"), run))), {
    minLength: 1,
    maxLength: 3,
  })
  .map((parts) => parts.map(([a, r]) => (r === null ? a : a + r[0] + r[1])).join("/"));
const validTag = fc
  .tuple(fc.constantFrom(..."aZ9_"), fc.string({ unit: fc.constantFrom(..."aZ9_.-"), maxLength: 12 }))
  .map(([a, b]) => a + b);
const ns = fc.option(fc.constantFrom("docker.io", "ghcr.io", "127.0.0.1:5000", "Docker.IO"), {
  nil: undefined,
});
const route = fc
  .record({ clientName: validName, ns })
  .map((r) => ({ ...r, name: `upstream/${r.clientName}` }) as unknown as PullTarget);

/** Characters and pieces an upstream (or whatever sits between) could put in a Link header. */
const linkChar = fc.constantFrom(...'<>;="&?/#%:@ ,\t\\abnlstx019.-_', "\r", "\n", "é", "\u0000");
const evilValue = fc.oneof(
  fc.string({ unit: linkChar, maxLength: 12 }),
  fc.constantFrom(
    "../../admin",
    "%2e%2e%2f",
    "a%0d%0aSet-Cookie:x",
    "<x>",
    '"',
    "1e3",
    "-1",
    "0x10",
    "１２",
    "9999999",
  ),
);
const nValue = fc.oneof(fc.integer({ min: 0, max: 1_000_000 }).map(String), evilValue);
const lastValue = fc.oneof(validTag, evilValue);
const target = fc.oneof(
  fc.constantFrom(
    "/v2/upstream/x/tags/list",
    "https://evil.test/v2/other/tags/list",
    "//evil.test/v2/x/tags/list",
    "javascript:alert(1)",
    "http://[::1",
    "/v2/../../admin/v1/policies",
  ),
  fc.string({ unit: linkChar, maxLength: 20 }),
);
const query = fc
  .array(
    fc.oneof(
      nValue.map((n) => `n=${n}`),
      lastValue.map((l) => `last=${l}`),
      lastValue.map((l) => `last=${encodeURIComponent(l)}`),
      fc.constantFrom("ns=evil.test", "redirect=https://evil.test", "n", "last", "&&", "n=1&n=2"),
    ),
    { maxLength: 4 },
  )
  .map((parts) => (parts.length ? `?${parts.join("&")}` : ""));
const rel = fc.constantFrom('rel="next"', "rel=next", 'REL="NEXT"', 'rel="prev"', 'rel="nextx"', "rel=", "");
const link = fc.oneof(
  fc
    .tuple(target, query, fc.constantFrom(";", " ; ", ";\t"), rel)
    .map(([t, q, sep, r]) => `<${t}${q}>${sep}${r}`),
  fc
    .tuple(target, query, rel, target, query)
    .map(([t1, q1, r, t2, q2]) => `<${t1}${q1}>; ${r}, <${t2}${q2}>; rel="next"`),
  fc.string({ unit: linkChar, maxLength: 60 }),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }),
);

/** What a rewritten link must be: pullgate's own tags/list for the client's name, with only n/last/ns. */
function checkOutput(out: string, r: PullTarget, maxN: number): URLSearchParams {
  const m = /^<([^<>\s]*)>; rel="next"$/.exec(out);
  expect(m, out).not.toBeNull();
  const url = (m as RegExpExecArray)[1] as string;
  const [path, qs, ...more] = url.split("?");
  expect(more).toEqual([]);
  expect(path).toBe(`/v2/${r.clientName}/tags/list`);
  expect(isValidName(r.clientName)).toBe(true);
  const params = new URLSearchParams(qs ?? "");
  const keys = [...params.keys()];
  expect(new Set(keys).size).toBe(keys.length);
  for (const k of keys) expect(["n", "last", "ns"]).toContain(k);
  const n = params.get("n");
  if (n !== null) {
    expect(n).toMatch(/^\d{1,6}$/);
    expect(Number(n)).toBeLessThanOrEqual(maxN);
  }
  const last = params.get("last");
  if (last !== null) expect(isValidTag(last)).toBe(true);
  expect(params.get("ns") ?? undefined).toBe(r.ns);
  expect(out).not.toMatch(/[\r\n\0]/);
  return params;
}

describe("rewriteTagsLink (property)", () => {
  it("never throws; any output points only at pullgate's /v2/<clientName>/tags/list with checked n/last", () => {
    fc.assert(
      fc.property(fc.option(link, { nil: undefined }), route, (l, r) => {
        const out = rewriteTagsLink(l, r);
        if (out === undefined) return;
        // n is kept only within what listTags accepts (at most 10 000).
        checkOutput(out, r, 10_000);
      }),
      { numRuns: 3000 },
    );
  });

  it("carries a well-formed upstream next link's n and last over, whatever the upstream host or path", () => {
    fc.assert(
      fc.property(
        route,
        target,
        fc.integer({ min: 0, max: 10_000 }),
        validTag,
        fc.constantFrom('rel="next"', "rel=next"),
        (r, t, n, last, relation) => {
          const q = new URLSearchParams({ last, n: String(n) });
          const out = rewriteTagsLink(`<${t.replace(/[<>?#]/g, "")}?${q}>; ${relation}`, r);
          // An unparsable upstream URL is dropped, never passed through.
          if (out === undefined) return;
          const params = checkOutput(out, r, 10_000);
          expect(params.get("n")).toBe(String(n));
          expect(params.get("last")).toBe(last);
        },
      ),
      { numRuns: 1000 },
    );
  });

  it("drops the whole link when the upstream's `last` is not a valid tag", () => {
    fc.assert(
      fc.property(
        route,
        evilValue.filter((v) => !isValidTag(v)),
        (r, bad) => {
          const q = new URLSearchParams({ n: "2", last: bad });
          expect(rewriteTagsLink(`</v2/x/tags/list?${q}>; rel="next"`, r)).toBeUndefined();
        },
      ),
      { numRuns: 500 },
    );
  });
});
