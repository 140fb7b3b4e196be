import fc from "fast-check";
import { MockAgent } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createApps, createDeps } from "../app.ts";
import { parseConfig } from "../config/index.ts";
import { createMemoryLogger } from "../telemetry/index.ts";

const UP = "http://up.test:5000";
const BLOB = `sha256:${"b".repeat(64)}`;
const PATH = `/v2/proj/app/blobs/${BLOB}`;

/**
 * The Range grammar a forwarded header must meet (RFC 9110 §14.1.1/§14.1.2, byte ranges only, written
 * independently of RANGE_RE): "bytes=" 1#( first-pos "-" [last-pos] / "-" suffix-length ), the list's
 * OWS being SP or HTAB only.
 */
function oracleRange(value: string): boolean {
  if (!value.startsWith("bytes=")) return false;
  const specs = value.slice("bytes=".length).split(",");
  return specs.every((spec, i) => {
    let s = spec;
    if (i > 0) s = s.replace(/^[ \t]*/, "");
    if (i < specs.length - 1) s = s.replace(/[ \t]*$/, "");
    const dash = s.indexOf("-");
    if (dash === -1) return false;
    const first = s.slice(0, dash);
    const last = s.slice(dash + 1);
    const digits = (t: string) => [...t].every((c) => c >= "0" && c <= "9");
    if (!digits(first) || !digits(last)) return false;
    return first.length > 0 || last.length > 0;
  });
}

const digits = fc.string({ unit: fc.constantFrom(..."0123456789"), maxLength: 4 });
const spec = fc.oneof(
  fc
    .tuple(
      digits.filter((d) => d.length > 0),
      digits,
    )
    .map(([a, b]) => `${a}-${b}`),
  digits.filter((d) => d.length > 0).map((b) => `-${b}`),
);
const ows = fc.constantFrom("", " ", "\t", "  ");
const validRange = fc
  .tuple(spec, fc.array(fc.tuple(ows, spec), { maxLength: 3 }))
  .map(([head, rest]) => `bytes=${head}${rest.map(([w, s]) => `,${w}${s}`).join("")}`);
const rangeChar = fc.constantFrom(
  ..."0123456789-,= \tbytesBYTES;",
  "\u000b",
  "\u000c",
  "\u00a0",
  "\u0085",
  "\u0660" /* ARABIC-INDIC ZERO */,
  "x",
);
const nearRange = fc.oneof(
  fc.string({ unit: rangeChar, maxLength: 20 }).map((s) => `bytes=${s}`),
  fc.tuple(validRange, fc.string({ unit: rangeChar, maxLength: 4 }), fc.nat()).map(([r, j, at]) => {
    const i = at % (r.length + 1);
    return r.slice(0, i) + j + r.slice(i);
  }),
  fc.string({ unit: rangeChar, maxLength: 20 }),
  fc.string({ maxLength: 30 }),
);

/** Whether fetch's Headers takes the value at all (else no client can send it through app.request). */
function sendable(value: string): boolean {
  try {
    new Headers({ range: value });
    return true;
  } catch {
    return false;
  }
}

let agent: MockAgent;
let app: ReturnType<typeof createApps>["proxy"];
let logger: ReturnType<typeof createMemoryLogger>;
let seen: { range: string | undefined }[] = [];

beforeAll(async () => {
  agent = new MockAgent();
  agent.disableNetConnect();
  logger = createMemoryLogger();
  const config = parseConfig(`upstreams:\n  - name: local\n    url: "${UP}"\n    default: true\n`, {
    source: "test",
    baseDir: ".",
    env: {},
  });
  const deps = await createDeps(config, { logger, dispatcherFor: () => agent });
  app = createApps(deps).proxy;
  agent
    .get(UP)
    .intercept({ path: PATH, method: "GET" })
    .reply((opts) => {
      const h = opts.headers as Record<string, string | undefined>;
      seen.push({ range: h.range });
      return h.range === undefined
        ? { statusCode: 404, data: "" }
        : { statusCode: 206, data: "x", responseOptions: { headers: { "content-range": "bytes 0-0/10" } } };
    })
    .persist();
});

afterAll(async () => {
  await agent.close();
});

async function send(range: string) {
  seen = [];
  const res = await app.request(PATH, { headers: { range } });
  await res.arrayBuffer();
  return { status: res.status, forwarded: seen.map((s) => s.range) };
}

describe("Range forwarding (property)", () => {
  it("the oracle agrees with RFC 9110 on hand-picked cases", () => {
    for (const ok of [
      "bytes=0-",
      "bytes=0-1",
      "bytes=-5",
      "bytes=0-1, 5-",
      "bytes=0-1,\t-2",
      "bytes=0-1 , 2-3",
    ])
      expect(oracleRange(ok)).toBe(true);
    for (const bad of [
      "bytes=",
      "bytes=-",
      "bytes=1",
      "bytes=0-1,",
      "bytes= 0-1",
      "items=0-1",
      "bytes=0-1,\u00a02-3",
    ])
      expect(oracleRange(bad)).toBe(false);
  });

  it("every well-formed byte Range is forwarded upstream verbatim", async () => {
    await fc.assert(
      fc.asyncProperty(validRange, async (range) => {
        fc.pre(sendable(range));
        const { status, forwarded } = await send(range);
        expect(status).toBe(206);
        expect(forwarded).toEqual([range]);
      }),
      { numRuns: 150 },
    );
  });

  it("a Range that reaches the upstream always meets the bytes= grammar, and no Range ever causes a 5xx", async () => {
    await fc.assert(
      fc.asyncProperty(nearRange, async (range) => {
        fc.pre(sendable(range));
        const { status, forwarded } = await send(range);
        expect(status).toBeLessThan(500);
        for (const r of forwarded) if (r !== undefined) expect(oracleRange(r)).toBe(true);
      }),
      { numRuns: 300 },
    );
  });
});
