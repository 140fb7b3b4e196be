import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type CryptoKey, exportJWK, generateKeyPair, SignJWT } from "jose";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createImage, type ImageResult, pushImage } from "./support/oci-images.ts";
import { makeTempDir, removeDir } from "./support/process.ts";
import { startTestPullgate, type TestPullgate } from "./support/pullgate.ts";
import { type Registry, startRegistry } from "./support/registry.ts";
import { generateTestKey, RegistryWriter, signLegacy } from "./support/signer.ts";
import { skopeoCopy } from "./support/skopeo.ts";

// The admin console in a real browser (Debian's chromium, driven by playwright-core) against a real
// pullgate in front of a real docker-registry: sign in with the admin token, switch a project's mode
// (through the confirmation dialog), pull an unsigned image with skopeo, watch the denial appear in
// the latest decisions, and ask why it was denied. PULLGATE_SCREENSHOT=1 writes docs/console.png.
// Chromium comes from scripts/install-test-deps.sh; if it cannot be launched this test fails.

const CHROMIUM = process.env.PULLGATE_CHROMIUM ?? "/usr/bin/chromium";
const TOKEN = "console-admin-token-0123456789";
const SCREENSHOT = join(import.meta.dirname, "..", "docs", "console.png");

let work: string;
let registry: Registry;
let pg: TestPullgate;
let browser: Browser;
let page: Page;
let unsigned: ImageResult;
/** Every request the page made: its URL and whether it carried the token. */
const requests: Array<{ url: string; authorization: string | undefined }> = [];

beforeAll(async () => {
  // Launched first: a missing or broken chromium fails here, before any server is started.
  try {
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  } catch (err) {
    throw new Error(
      `chromium could not be launched from ${CHROMIUM} (sh scripts/install-test-deps.sh installs it): ${(err as Error).message}`,
    );
  }
  work = await makeTempDir("console-test");
  const layout = join(work, "layout");
  registry = await startRegistry();
  const trusted = generateTestKey();
  const image = async (tag: string, repository: string) => {
    const result = await createImage({ dir: layout, tag, layers: [{ size: 256, seed: `console-${tag}` }] });
    await pushImage({ layoutDir: layout, tag, dest: `${registry.host}/${repository}:v1` });
    return result;
  };
  const signed = await image("signed", "proj/signed");
  await signLegacy({
    writer: new RegistryWriter(registry.url),
    repository: "proj/signed",
    digest: signed.manifestDigest,
    key: trusted,
  });
  unsigned = await image("unsigned", "proj/unsigned");
  const pem = JSON.stringify(trusted.publicKeyPem);
  pg = await startTestPullgate(
    `  - name: local\n    url: "${registry.url}"`,
    `projects:
  proj:
    mode: audit
    keys: [{ name: release, pem: ${pem}, transparencyLog: optional }]
  supply:
    mode: enforce
    keys: [{ name: release, pem: ${pem}, transparencyLog: optional }]
    keyless:
      - name: release-workflow
        issuer: https://token.actions.githubusercontent.com
        subjectRegExp: https://github\\.com/acme/app/\\.github/workflows/release\\.yml@refs/tags/v.*
    requiredSigners: [release-workflow]
    attestations:
      - name: provenance
        predicateType: https://slsa.dev/provenance/v1
        signers: [release-workflow]
`,
    { adminToken: TOKEN },
  );
  const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
  page = await context.newPage();
  page.on("request", (r) => requests.push({ url: r.url(), authorization: r.headers().authorization }));
}, 180_000);

afterAll(async () => {
  await browser?.close();
  await pg?.stop();
  await registry?.stop();
  if (work) await removeDir(work);
});

async function apiGet(path: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${pg.adminUrl}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  return (await res.json()) as Record<string, unknown>;
}

describe("the admin console", () => {
  it("serves a page without data, with a strict CSP, and refuses a wrong token", async () => {
    const res = await page.goto(`${pg.adminUrl}/console/`);
    expect(res?.status()).toBe(200);
    const headers = res?.headers() ?? {};
    expect(headers["content-security-policy"]).toContain("script-src 'self'");
    expect(headers["x-frame-options"]).toBe("DENY");
    await expect.poll(() => page.locator("#login").isVisible()).toBe(true);
    expect(await page.locator("#app").isVisible()).toBe(false);
    expect(await page.locator("#projects tbody tr").count()).toBe(0);

    await page.fill("#token", "not-the-token");
    await page.click("#login-form button[type=submit]");
    await expect.poll(() => page.textContent("#login-error")).toBe("Invalid token.");
    expect(await page.locator("#app").isVisible()).toBe(false);
  });

  it("signs in with the token and lists projects with their mode, signers and attestations", async () => {
    await page.fill("#token", TOKEN);
    await page.click("#login-form button[type=submit]");
    await page.locator("#app").waitFor({ state: "visible" });
    await page.locator('#projects tr[data-project="supply"]').waitFor();
    expect(await page.inputValue('select[data-project="proj"]')).toBe("audit");
    expect(await page.inputValue('select[data-project="supply"]')).toBe("enforce");
    const supply = (await page.textContent('#projects tr[data-project="supply"]')) ?? "";
    expect(supply).toContain("release-workflow");
    expect(supply).toContain("https://token.actions.githubusercontent.com");
    expect(supply).toContain("provenance");
    expect(supply).toContain("https://slsa.dev/provenance/v1");
    expect(supply).toContain("required signers: release-workflow");
    // The token is kept for this tab only, and the field is cleared.
    expect(await page.evaluate(() => sessionStorage.length)).toBe(1);
    expect(await page.evaluate(() => localStorage.length)).toBe(0);
    expect(await page.inputValue("#token")).toBe("");
  });

  it("switches a project's mode only once the dialog is confirmed", async () => {
    await page.selectOption('select[data-project="proj"]', "enforce");
    await page.locator("#confirm").waitFor({ state: "visible" });
    expect(await page.textContent("#confirm-text")).toContain('Switch project "proj" from audit to enforce?');
    await page.click("#confirm-cancel");
    await page.locator("#confirm").waitFor({ state: "hidden" });
    expect(await page.inputValue('select[data-project="proj"]')).toBe("audit");
    expect(await apiGet("/admin/v1/projects/proj/policy")).toMatchObject({ mode: "audit", source: "config" });

    await page.selectOption('select[data-project="proj"]', "enforce");
    await page.click("#confirm-ok");
    await expect.poll(() => page.textContent("#status")).toBe("proj: mode audit → enforce");
    expect(await page.inputValue('select[data-project="proj"]')).toBe("enforce");
    expect(await apiGet("/admin/v1/projects/proj/policy")).toMatchObject({
      mode: "enforce",
      source: "runtime",
    });
  });

  it("shows skopeo's refused pull in the latest decisions, and explains it", async () => {
    const refused = await skopeoCopy(pg.host, "proj/unsigned", work);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr).toMatch(/denied|403/i);
    const served = await skopeoCopy(pg.host, "proj/signed", work);
    expect(served.code, served.stderr).toBe(0);

    // Auto-refresh (every 3 s) brings both in.
    const deny = page.locator('#decisions tr[data-outcome="deny"][data-repository="proj/unsigned"]');
    await deny.first().waitFor({ timeout: 15_000 });
    await page
      .locator('#decisions tr[data-outcome="allow"][data-repository="proj/signed"]')
      .first()
      .waitFor();
    const [recorded] = pg.deps.decisions.list({ repository: "proj/unsigned", outcome: "deny" });
    expect(recorded?.reason).toBeTruthy();
    expect(recorded?.digest).toBe(unsigned.manifestDigest);
    expect(await deny.first().locator("td.reason").textContent()).toBe(recorded?.reason);

    // Filters: the outcome and the repository.
    await page.selectOption("#filter-outcome", "deny");
    await page.click("#filter-form button[type=submit]");
    await expect.poll(() => page.locator("#decisions tbody tr").count()).toBe(1);
    await page.selectOption("#filter-outcome", "");
    await page.fill("#filter-repository", "proj/signed");
    await page.click("#filter-form button[type=submit]");
    await expect
      .poll(() => page.locator('#decisions tbody tr[data-repository="proj/signed"]').count())
      .toBeGreaterThan(0);
    expect(await page.locator('#decisions tbody tr:not([data-repository="proj/signed"])').count()).toBe(0);
    await page.fill("#filter-repository", "");
    await page.click("#filter-form button[type=submit]");
    await deny.first().waitFor();

    // "Why was this denied?": the dry run for the denied digest.
    await deny.first().locator("button").click();
    await page.locator('#why-result[data-outcome="deny"]').waitFor({ timeout: 20_000 });
    expect(await page.inputValue("#why-reference")).toBe(`proj/unsigned@${unsigned.manifestDigest}`);
    const why = (await page.textContent("#why-result")) ?? "";
    expect(why).toContain(recorded?.reason as string);
    expect(why).toContain(unsigned.manifestDigest);
    // …in the words of the 403 the client got.
    expect(await page.textContent("#why-result .why-message")).toMatch(
      /admits only signed images: .* has no signature/,
    );

    if (process.env.PULLGATE_SCREENSHOT === "1") {
      await page.evaluate(() =>
        (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0),
      );
      await page.screenshot({ path: SCREENSHOT, fullPage: true });
    }
  });

  it("writes what a decision says as text, never as HTML", async () => {
    const detail = '<img src="x" onerror="window.__pwned = 1"><b>bold</b>';
    pg.deps.audit.decision({
      project: "proj",
      repository: "proj/evil",
      upstream: "local",
      reference: "<script>window.__pwned = 2</script>",
      digest: `sha256:${"e".repeat(64)}`,
      method: "GET",
      mode: "enforce",
      outcome: "deny",
      reason: "NO_SIGNATURE",
      detail,
      durationMs: 1,
    });
    const row = page.locator('#decisions tr[data-repository="proj/evil"]');
    await row.waitFor({ timeout: 15_000 });
    expect(await row.locator("td.detail").textContent()).toBe(detail);
    expect(await page.locator("#decisions img, #decisions b, #decisions script").count()).toBe(0);
    expect(await page.evaluate(() => (globalThis as { __pwned?: number }).__pwned)).toBeUndefined();
  });

  it("sent the token only as Authorization to this pullgate, never in a URL, and signs out", async () => {
    const origin = new URL(pg.adminUrl).origin;
    expect(requests.length).toBeGreaterThan(5);
    for (const r of requests) {
      expect(r.url.startsWith(`${origin}/`), r.url).toBe(true);
      expect(r.url).not.toContain(TOKEN);
      if (new URL(r.url).pathname.startsWith("/admin/v1/"))
        expect(r.authorization === `Bearer ${TOKEN}` || r.authorization === "Bearer not-the-token").toBe(
          true,
        );
      else expect(r.authorization).toBeUndefined();
    }
    await page.click("#logout");
    await page.locator("#login").waitFor({ state: "visible" });
    expect(await page.evaluate(() => sessionStorage.length)).toBe(0);
    // Nothing the session read stays in the page (the app is hidden, and emptied).
    expect(await page.locator("#decisions tbody tr, #projects tbody tr").count()).toBe(0);
    expect(await page.textContent("#why-result")).toBe("");
    await page.reload();
    await page.locator("#login").waitFor({ state: "visible" });
    expect(await page.locator("#decisions tbody tr").count()).toBe(0);
  });
});

describe("the admin console with a JWT (admin.jwt), under the JWT's roles", () => {
  let jwtPg: TestPullgate;
  let jwtPage: Page;
  let signer: CryptoKey;
  const ISSUER = "https://issuer.console.test";

  const jwt = (roles: string[], lifetimeSeconds = 300) =>
    new SignJWT({ pullgate_roles: roles })
      .setProtectedHeader({ alg: "ES256", kid: "console" })
      .setIssuer(ISSUER)
      .setAudience("pullgate")
      .setSubject(`console-${roles.join("-")}`)
      .setIssuedAt()
      .setExpirationTime(Math.floor(Date.now() / 1000) + lifetimeSeconds)
      .sign(signer);

  beforeAll(async () => {
    const pair = await generateKeyPair("ES256");
    signer = pair.privateKey;
    const jwksPath = join(work, "jwks.json");
    const jwk = { ...(await exportJWK(pair.publicKey)), kid: "console", alg: "ES256", use: "sig" };
    await writeFile(jwksPath, JSON.stringify({ keys: [jwk] }));
    jwtPg = await startTestPullgate(
      `  - name: local\n    url: "${registry.url}"`,
      "projects:\n  proj: { mode: audit }\n  other: { mode: audit }\n",
      {
        adminYaml: `  jwt: { jwksPath: ${JSON.stringify(jwksPath)}, issuer: "${ISSUER}", audience: pullgate }`,
      },
    );
    jwtPage = await (await browser.newContext()).newPage();
  }, 60_000);

  afterAll(async () => {
    await jwtPg?.stop();
  });

  async function signIn(token: string): Promise<void> {
    await jwtPage.goto(`${jwtPg.adminUrl}/console/`);
    await jwtPage.fill("#token", token);
    await jwtPage.click("#login-form button[type=submit]");
  }

  async function switchMode(project: string, to: string): Promise<void> {
    await jwtPage.selectOption(`select[data-project="${project}"]`, to);
    await jwtPage.locator("#confirm").waitFor({ state: "visible" });
    await jwtPage.click("#confirm-ok");
  }

  it("signs in with a read-only JWT: sees the projects, and a mode switch is refused, changing nothing", async () => {
    await signIn(await jwt(["read"]));
    await jwtPage.locator('#projects tr[data-project="proj"]').waitFor();
    await switchMode("proj", "enforce");
    await expect
      .poll(() => jwtPage.locator("#status.error").textContent())
      .toMatch(/^proj: the mode was not changed \(.*write.*\)$/);
    expect(await jwtPage.inputValue('select[data-project="proj"]')).toBe("audit");
    expect(jwtPg.deps.policies.forProject("proj")).toMatchObject({ mode: "audit", source: "config" });
  });

  it("with write:proj, switches proj but not another project", async () => {
    await jwtPage.click("#logout");
    await signIn(await jwt(["read", "write:proj"]));
    await jwtPage.locator('#projects tr[data-project="other"]').waitFor();
    await switchMode("proj", "enforce");
    await expect.poll(() => jwtPage.textContent("#status")).toBe("proj: mode audit → enforce");
    expect(jwtPg.deps.policies.forProject("proj")).toMatchObject({ mode: "enforce", source: "runtime" });
    await switchMode("other", "off");
    await expect
      .poll(() => jwtPage.locator("#status.error").textContent())
      .toMatch(/^other: the mode was not changed/);
    expect(jwtPg.deps.policies.forProject("other").mode).toBe("audit");
  });

  it("refuses an expired JWT at sign-in", async () => {
    await jwtPage.click("#logout");
    await signIn(await jwt(["write"], -60));
    await expect.poll(() => jwtPage.textContent("#login-error")).toBe("Invalid token.");
    expect(await jwtPage.locator("#app").isVisible()).toBe(false);
  });
});
