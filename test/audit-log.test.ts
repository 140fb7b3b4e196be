import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AUDIT_SCHEMA } from "../src/telemetry/index.ts";
import { createImage, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { rawRequest, startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./support/signer.ts";

// The audit stream's records, from real decisions and admin changes of a pullgate writing them to a
// file (log.audit.to: file), validated against docs/audit.schema.json with a validator of the JSON
// Schema subset that file uses (the validator refuses any other keyword, so it cannot pass vacuously).

type Schema = Record<string, unknown>;
const SCHEMA_PATH = join(import.meta.dirname, "..", "docs", "audit.schema.json");
const KEYWORDS = new Set([
  "$schema",
  "$id",
  "$defs",
  "$ref",
  "title",
  "description",
  "oneOf",
  "type",
  "const",
  "enum",
  "required",
  "properties",
  "additionalProperties",
  "minLength",
  "pattern",
  "minimum",
  "format",
]);

function typeOf(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "array";
  if (typeof v === "number") return Number.isInteger(v) ? "integer" : "number";
  return typeof v;
}

/** Problems of `value` against `schema` (empty: valid), for the keywords in KEYWORDS. */
function validate(root: Schema, schema: Schema, value: unknown, at = "$"): string[] {
  for (const k of Object.keys(schema))
    if (!KEYWORDS.has(k)) throw new Error(`unsupported keyword ${k} at ${at}`);
  if (typeof schema.$ref === "string") {
    const name = /^#\/\$defs\/(.+)$/.exec(schema.$ref)?.[1];
    const target = name ? (root.$defs as Record<string, Schema>)[name] : undefined;
    if (!target) throw new Error(`unresolved $ref ${schema.$ref}`);
    return validate(root, target, value, at);
  }
  if (Array.isArray(schema.oneOf)) {
    const passing = (schema.oneOf as Schema[]).filter((s) => validate(root, s, value, at).length === 0);
    return passing.length === 1 ? [] : [`${at}: matches ${passing.length} of oneOf`];
  }
  const out: string[] = [];
  const t = typeOf(value);
  if (schema.type !== undefined) {
    const ok = schema.type === t || (schema.type === "number" && t === "integer");
    if (!ok) return [`${at}: ${t}, not ${String(schema.type)}`];
  }
  if ("const" in schema && value !== schema.const) out.push(`${at}: not ${JSON.stringify(schema.const)}`);
  if (Array.isArray(schema.enum) && !schema.enum.includes(value))
    out.push(`${at}: ${JSON.stringify(value)} not in enum`);
  if (typeof value === "string") {
    if (typeof schema.minLength === "number" && value.length < schema.minLength) out.push(`${at}: too short`);
    if (typeof schema.pattern === "string" && !new RegExp(schema.pattern, "u").test(value))
      out.push(`${at}: ${JSON.stringify(value)} does not match ${schema.pattern}`);
    if (schema.format === "date-time" && Number.isNaN(Date.parse(value))) out.push(`${at}: not a date-time`);
  }
  if (typeof value === "number" && typeof schema.minimum === "number" && value < schema.minimum)
    out.push(`${at}: below ${schema.minimum}`);
  if (t === "object") {
    const obj = value as Record<string, unknown>;
    const props = (schema.properties ?? {}) as Record<string, Schema>;
    for (const r of (schema.required ?? []) as string[]) if (!(r in obj)) out.push(`${at}.${r}: missing`);
    for (const [k, v] of Object.entries(obj)) {
      if (props[k]) out.push(...validate(root, props[k], v, `${at}.${k}`));
      else if (schema.additionalProperties === false) out.push(`${at}.${k}: not in the schema`);
    }
  }
  return out;
}

const ACCEPT = "application/vnd.oci.image.manifest.v1+json, application/vnd.oci.image.index.v1+json";
const ADMIN = { authorization: "Bearer audit-admin" };

let work: string;
let registry: Registry;
let pg: TestPullgate | undefined;
let schema: Schema;
let records: Array<Record<string, unknown>>;
let signedDigest: string;
let logs: Array<Record<string, unknown>>;

beforeAll(async () => {
  schema = JSON.parse(await readFile(SCHEMA_PATH, "utf8")) as Schema;
  work = await makeTempDir("audit-log-test");
  const layout = join(work, "layout");
  registry = await startRegistry();
  const writer = new RegistryWriter(registry.url);
  const key = generateTestKey();
  const push = async (tag: string, dest: string) => {
    const image = await createImage({ dir: layout, tag, layers: [{ size: 256, seed: `audit-${tag}` }] });
    await pushImage({ layoutDir: layout, tag, dest: `${registry.host}/${dest}` });
    return image;
  };
  const signed = await push("signed", "proj/signed:v1");
  signedDigest = signed.manifestDigest;
  await signLegacy({ writer, repository: "proj/signed", digest: signed.manifestDigest, key });
  await push("unsigned", "proj/unsigned:v1");
  await push("audited", "aud/app:v1");
  await push("free", "free/app:v1");
  const auditPath = join(work, "audit.jsonl");
  const keys = `keys: [{ name: release, pem: ${JSON.stringify(key.publicKeyPem)}, transparencyLog: optional }]`;
  const running = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"`,
    `log:\n  audit: { to: file, path: ${JSON.stringify(auditPath)} }\nprojects:\n  proj: { mode: enforce, ${keys} }\n  aud: { mode: audit, ${keys} }\n  free: { mode: "off" }\n`,
    { adminToken: "audit-admin" },
  );
  pg = running;
  const get = (path: string) => rawRequest(running.proxyUrl, path, { headers: { accept: ACCEPT } });
  expect((await get("/v2/proj/signed/manifests/v1")).status).toBe(200);
  expect((await get("/v2/proj/signed/manifests/v1")).status).toBe(200); // from the verdict cache
  expect((await get("/v2/proj/unsigned/manifests/v1")).status).toBe(403);
  expect((await get("/v2/aud/app/manifests/v1")).status).toBe(200);
  expect((await get("/v2/free/app/manifests/v1")).status).toBe(200);
  const put = await fetch(`${running.adminUrl}/admin/v1/projects/free/policy`, {
    method: "PUT",
    headers: { ...ADMIN, "content-type": "application/json" },
    body: JSON.stringify({ mode: "audit" }),
  });
  expect(put.status).toBe(200);
  const del = await fetch(`${running.adminUrl}/admin/v1/cache/${signedDigest}`, {
    method: "DELETE",
    headers: ADMIN,
  });
  expect(del.status).toBe(200);
  logs = running.logs;
  // Stopping writes out what is queued and closes the file.
  await running.stop();
  pg = undefined;
  const text = await readFile(auditPath, "utf8");
  expect(text.endsWith("\n")).toBe(true);
  records = text
    .trimEnd()
    .split("\n")
    .map((line) => JSON.parse(line) as Record<string, unknown>);
}, 180_000);

afterAll(async () => {
  await pg?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

describe("the audit stream (docs/audit.schema.json)", () => {
  it("writes every decision and admin change to the file, one JSON line each, and not to the log", () => {
    const decisions = records.filter((r) => r.kind === "manifest-decision");
    expect(decisions.map((r) => [r.repository, r.outcome])).toEqual([
      ["proj/signed", "allow"],
      ["proj/signed", "allow"],
      ["proj/unsigned", "deny"],
      ["aud/app", "would-deny"],
      ["free/app", "off"],
    ]);
    expect(records.filter((r) => r.kind === "admin-change").map((r) => r.action)).toEqual([
      "policy.update",
      "cache.delete",
    ]);
    expect(records.every((r) => r.schema === AUDIT_SCHEMA && r.event === "audit")).toBe(true);
    expect(logs.filter((r) => r.event === "audit")).toEqual([]);
    expect(logs.some((r) => r.event === "access")).toBe(true);
  });

  it("validates every real record against the schema", () => {
    expect(records.length).toBe(7);
    for (const record of records) expect(validate(schema, schema, record)).toEqual([]);
    // The optional fields seen in real records are in the schema too.
    const allow = records.find((r) => r.outcome === "allow" && r.tier === "verified");
    expect(allow).toMatchObject({ via: "signature", key: "release", method: "GET", mode: "enforce" });
    expect(records.find((r) => r.outcome === "deny")).toMatchObject({
      level: "warn",
      reason: expect.any(String),
    });
    expect(records.find((r) => r.action === "policy.update")).toMatchObject({
      actor: expect.any(String),
      role: "write",
      target: "free",
      before: expect.any(Object),
      after: expect.any(Object),
    });
  });

  it("the validator refuses what the schema does not allow", () => {
    const decision = records.find((r) => r.kind === "manifest-decision") as Record<string, unknown>;
    const bad = (change: Record<string, unknown>, drop?: string) => {
      const r: Record<string, unknown> = { ...decision, ...change };
      if (drop) delete r[drop];
      return validate(schema, schema, r);
    };
    expect(bad({})).toEqual([]);
    expect(bad({}, "digest")).not.toEqual([]);
    expect(bad({ outcome: "maybe" })).not.toEqual([]);
    expect(bad({ schema: "pullgate.audit/v2" })).not.toEqual([]);
    expect(bad({ surprise: 1 })).not.toEqual([]);
    expect(bad({ durationMs: "3" })).not.toEqual([]);
    expect(bad({ reason: null })).not.toEqual([]);
    expect(bad({ time: "yesterday" })).not.toEqual([]);
    expect(() => validate(schema, { maxLength: 3 }, "x")).toThrow(/unsupported keyword/);
  });
});
