#!/usr/bin/env node
// pullgate CLI. From a checkout it runs the TypeScript sources directly (Node >= 24 type stripping).
// A production install (the container image) ships only the compiled dist/ (`npm run build`), which
// starts with ~30 MB less memory (no TypeScript stripper loaded); PULLGATE_ENTRY=dist forces it.
import { existsSync } from "node:fs";

const [major] = process.versions.node.split(".").map(Number);
if (major < 24) {
  process.stderr.write(
    `pullgate needs Node.js 24 or newer (this is ${process.version}). Run it through npm (npx pullgate, npm start), which uses the node@24 from node_modules/.bin.\n`,
  );
  process.exit(2);
}
const fromSource =
  existsSync(new URL("../src/main.ts", import.meta.url)) && process.env.PULLGATE_ENTRY !== "dist";
const { runCli } = await import(fromSource ? "../src/main.ts" : "../dist/main.js");
const code = await runCli(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
