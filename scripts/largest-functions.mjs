// The largest functions in src/ (shipped code, not tests), by lines: `node scripts/largest-functions.mjs [N]`.
// A measure for reviews (issue 9's closing note used it), not a gate. It parses with @babel/parser,
// which the dev install has through Stryker.
import { execSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(`${process.cwd()}/package.json`);
const { parse } = require("@babel/parser");
const files = execSync("git ls-files -co --exclude-standard 'src/**.ts'", { encoding: "utf8" })
  .split("\n")
  .filter((f) => f && existsSync(f) && !/\.test\.ts$|\.test-helpers\.ts$/.test(f));
const out = [];
for (const file of files) {
  const ast = parse(readFileSync(file, "utf8"), { sourceType: "module", plugins: ["typescript"] });
  const walk = (node, name) => {
    if (!node || typeof node.type !== "string") return;
    const isFunction = /Function|ClassMethod|ClassPrivateMethod|ObjectMethod/.test(node.type) && node.body;
    if (isFunction) {
      const own = node.id?.name ?? node.key?.name ?? node.key?.id?.name ?? name ?? "(anonymous)";
      out.push({ lines: node.loc.end.line - node.loc.start.line + 1, where: `${file}:${node.loc.start.line} ${own}` });
    }
    const childName =
      node.type === "VariableDeclarator"
        ? node.id?.name
        : node.type === "ObjectProperty" || node.type === "ClassProperty"
          ? (node.key?.name ?? node.key?.value)
          : undefined;
    for (const [key, value] of Object.entries(node)) {
      if (key === "loc") continue;
      const next = childName ?? (isFunction ? undefined : name);
      if (Array.isArray(value)) for (const child of value) walk(child, next);
      else if (value && typeof value === "object") walk(value, next);
    }
  };
  walk(ast.program);
}
out.sort((a, b) => b.lines - a.lines);
for (const f of out.slice(0, Number(process.argv[2] ?? 15))) console.log(String(f.lines).padStart(4), f.where);
