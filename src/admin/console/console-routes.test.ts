import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { createAuditLog, RecentDecisions, silentLogger } from "../../telemetry/index.ts";
import { createAdminApp } from "../admin-app.ts";
import { createAdminAuthenticator } from "../admin-auth.ts";
import { CONSOLE_CSS, CONSOLE_HTML } from "./console-page.ts";

function app() {
  return createAdminApp({
    pull: {} as never,
    isDraining: () => false,
    api: {
      policies: {} as never,
      cache: {} as never,
      auth: createAdminAuthenticator({ token: undefined, jwt: undefined }),
      audit: createAuditLog(silentLogger),
      logger: silentLogger,
      decisions: new RecentDecisions(),
    },
  });
}

const ASSETS = [
  ["/console/", "text/html"],
  ["/console/console.js", "text/javascript"],
  ["/console/console.css", "text/css"],
] as const;

describe("the console's static assets", () => {
  it.each(ASSETS)(
    "%s is served without credentials, with a strict CSP and no framing",
    async (path, type) => {
      const res = await app().request(path);
      expect(res.status).toBe(200);
      expect(res.headers.get("content-type")).toContain(type);
      const csp = res.headers.get("content-security-policy") ?? "";
      expect(csp).toContain("default-src 'none'");
      expect(csp).toContain("script-src 'self'");
      expect(csp).toContain("frame-ancestors 'none'");
      expect(csp).not.toContain("unsafe");
      expect(res.headers.get("x-frame-options")).toBe("DENY");
      expect(res.headers.get("x-content-type-options")).toBe("nosniff");
      expect(res.headers.get("referrer-policy")).toBe("no-referrer");
    },
  );

  it("/console redirects to /console/", async () => {
    const res = await app().request("/console");
    expect(res.status).toBe(308);
    expect(res.headers.get("location")).toBe("/console/");
  });

  it("the page has no inline script or style, and nothing from another origin", () => {
    const scripts = [...CONSOLE_HTML.matchAll(/<script\b([^>]*)>([\s\S]*?)<\/script>/g)];
    expect(scripts).toHaveLength(1);
    expect(scripts[0]?.[1]).toContain('src="/console/console.js"');
    expect(scripts[0]?.[2]).toBe("");
    expect(CONSOLE_HTML).not.toMatch(/<style|\sstyle=|\son[a-z]+=|javascript:/i);
    expect(CONSOLE_HTML).not.toMatch(/(?:src|href)="(?!\/console\/)/);
    expect(CONSOLE_CSS).not.toMatch(/url\(|@import/);
  });

  it("the script writes no HTML from data and puts no token in a URL", () => {
    const js = readFileSync(new URL("./console.js", import.meta.url), "utf8");
    expect(js).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(|new Function/);
    expect(js).toMatch(/authorization: `Bearer \$\{token\}`/);
    expect(js).not.toMatch(/localStorage/);
    expect(js).toContain('credentials: "omit"');
  });

  it("the console is not served without the admin API", async () => {
    const bare = createAdminApp({ pull: {} as never, isDraining: () => false });
    expect((await bare.request("/console/")).status).toBe(404);
  });
});
