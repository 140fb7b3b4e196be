import { readFileSync } from "node:fs";
import type { Hono } from "hono";
import type { AdminEnv } from "../admin-request.ts";
import { CONSOLE_CSS, CONSOLE_HTML } from "./console-page.ts";

/**
 * Every console response: its own scripts and styles only (no inline script or style, nothing from
 * another origin), API calls to this origin only, never framed, no referrer.
 */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  "x-frame-options": "DENY",
  "x-content-type-options": "nosniff",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "cache-control": "no-cache",
});

let script: string | undefined;

/**
 * The console's script, read once from beside this module: src/admin/console/console.js from a
 * checkout, dist/admin/console/console.js in a build (tsconfig.build.json has allowJs, so tsc ships it).
 */
function consoleScript(): string {
  script ??= readFileSync(new URL("./console.js", import.meta.url), "utf8");
  return script;
}

/**
 * GET /console/ (the page), /console/console.js, /console/console.css: static, the same for everyone,
 * served without authentication. The page asks for the admin token (or a JWT) and sends it as
 * `Authorization: Bearer` to /admin/v1, which checks it as for any other caller.
 */
export function registerConsole(app: Hono<AdminEnv>): void {
  const js = consoleScript();
  const send = (body: string, type: string) =>
    new Response(body, { headers: { ...CONSOLE_HEADERS, "content-type": type } });
  app.get("/console", (c) => c.redirect("/console/", 308));
  app.get("/console/", () => send(CONSOLE_HTML, "text/html; charset=utf-8"));
  app.get("/console/console.js", () => send(js, "text/javascript; charset=utf-8"));
  app.get("/console/console.css", () => send(CONSOLE_CSS, "text/css; charset=utf-8"));
}
