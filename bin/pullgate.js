#!/usr/bin/env node
// pullgate CLI. Runs the TypeScript sources directly on Node >= 24 (type stripping).
const [major] = process.versions.node.split(".").map(Number);
if (major < 24) {
  process.stderr.write(
    `pullgate needs Node.js 24 or newer (this is ${process.version}). Run it through npm (npx pullgate, npm start), which uses the node@24 from node_modules/.bin.\n`,
  );
  process.exit(2);
}
const { runCli } = await import("../src/main.ts");
const code = await runCli(process.argv.slice(2));
if (code !== undefined) process.exitCode = code;
