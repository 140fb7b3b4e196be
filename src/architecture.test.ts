import { readdirSync, readFileSync } from "node:fs";
import { dirname, join, normalize, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// The import rules of docs/architecture.md, checked on the shipped sources (tests may import freely).

const SRC = dirname(fileURLToPath(import.meta.url));

function shippedFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return shippedFiles(path);
    return e.name.endsWith(".ts") && !e.name.endsWith(".test.ts") && !e.name.endsWith(".test-helpers.ts")
      ? [path]
      : [];
  });
}

/** Every module specifier a file imports or re-exports (static and dynamic). */
function specifiers(source: string): string[] {
  const found = [
    ...source.matchAll(/^\s*(?:import|export)\s[^;]*?\sfrom\s+"([^"]+)"/gms),
    ...source.matchAll(/^\s*import\s+"([^"]+)"/gm),
    ...source.matchAll(/\bimport\(\s*"([^"]+)"\s*\)/g),
  ];
  return found.map((m) => m[1] as string);
}

const files = shippedFiles(SRC);
const rel = (path: string) => relative(SRC, path);
/** "pull", "http", … or the file name for top-level files ("app.ts", "main.ts"). */
const folderOf = (relPath: string) => (relPath.includes("/") ? (relPath.split("/")[0] as string) : relPath);

const graph = new Map<string, { local: string[]; packages: string[] }>();
for (const file of files) {
  const specs = specifiers(readFileSync(file, "utf8"));
  graph.set(rel(file), {
    local: specs.filter((s) => s.startsWith(".")).map((s) => normalize(join(dirname(rel(file)), s))),
    packages: specs.filter((s) => !s.startsWith(".")),
  });
}

function cycles(edges: Map<string, Set<string>>): string[] {
  const out: string[] = [];
  const state = new Map<string, "open" | "done">();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, "open");
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (state.get(next) === "open") out.push([...stack.slice(stack.indexOf(next)), next].join(" -> "));
      else if (!state.has(next)) visit(next);
    }
    stack.pop();
    state.set(node, "done");
  };
  for (const node of edges.keys()) if (!state.has(node)) visit(node);
  return out;
}

const importsOf = (folder: string) =>
  [...graph].filter(([f]) => folderOf(f) === folder).flatMap(([f, d]) => d.local.map((to) => ({ f, to })));

describe("architecture", () => {
  it("reads the sources", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(graph.get("pull/pull-service.ts")?.local).toContain("upstream/index.ts");
  });

  it("has no import cycle between files or between folders", () => {
    const fileEdges = new Map([...graph].map(([f, d]) => [f, new Set(d.local)]));
    const folderEdges = new Map<string, Set<string>>();
    for (const [f, d] of graph) {
      for (const to of d.local) {
        if (folderOf(f) === folderOf(to)) continue;
        if (!folderEdges.has(folderOf(f))) folderEdges.set(folderOf(f), new Set());
        folderEdges.get(folderOf(f))?.add(folderOf(to));
      }
    }
    expect(cycles(fileEdges)).toEqual([]);
    expect(cycles(folderEdges)).toEqual([]);
  });

  it("reaches the upstreams only through pull/: http/ and admin/ import neither upstream/ nor ioredis", () => {
    for (const folder of ["http", "admin"]) {
      expect(importsOf(folder).filter(({ to }) => folderOf(to) === "upstream")).toEqual([]);
    }
  });

  it("speaks Redis only in redis/", () => {
    const users = [...graph].filter(([, d]) => d.packages.includes("ioredis")).map(([f]) => folderOf(f));
    expect(new Set(users)).toEqual(new Set(["redis"]));
  });

  it("keeps verify/ pure: it imports only oci/, and no file, network, clock or env access", () => {
    expect(importsOf("verify").filter(({ to }) => !["verify", "oci"].includes(folderOf(to)))).toEqual([]);
    for (const [f, d] of graph) {
      if (folderOf(f) !== "verify") continue;
      expect(
        d.packages.filter((p) => /^node:(fs|net|http|https|dns|child_process)/.test(p)),
        f,
      ).toEqual([]);
      expect(readFileSync(join(SRC, f), "utf8"), f).not.toMatch(
        /\bprocess\.env\b|\bDate\.now\(|new Date\(\)/,
      );
    }
  });

  it("keeps oci/ and telemetry/ free of other folders", () => {
    for (const folder of ["oci", "telemetry"]) {
      expect(importsOf(folder).filter(({ to }) => folderOf(to) !== folder)).toEqual([]);
    }
  });

  it("ships nothing that imports test code", () => {
    for (const [f, d] of graph) {
      const testImports = d.local.filter((to) => to.startsWith("..") || /\.test(-helpers)?\.ts$/.test(to));
      expect(testImports, f).toEqual([]);
    }
  });
});
