/**
 * The pullgate.yaml the demo runs with, printed for the user to start from. It holds no secret: the
 * admin token is handed to pullgate through PULLGATE_ADMIN_TOKEN, the Redis HMAC key through
 * DEMO_REDIS_HMAC_KEY_ENV, and the trusted key is the public key, inline, so the printed file stays
 * valid after the demo removed its temp dir.
 */

/** The environment variable the demo passes its (random) Redis HMAC key in. */
export const DEMO_REDIS_HMAC_KEY_ENV = "PULLGATE_REDIS_HMAC_KEY";

export interface DemoConfigInput {
  proxyPort: number;
  adminPort: number;
  registryUrl: string;
  redisUrl: string | undefined;
  keyName: string;
  publicKeyPem: string;
}

export function renderDemoConfig(input: DemoConfigInput): string {
  const pem = input.publicKeyPem
    .trim()
    .split("\n")
    .map((line) => `          ${line}`);
  return [
    `listen: "127.0.0.1:${input.proxyPort}"`,
    "admin:",
    `  listen: "127.0.0.1:${input.adminPort}"  # token: env PULLGATE_ADMIN_TOKEN (the demo's is not shown)`,
    ...(input.redisUrl
      ? [
          "redis:",
          `  url: "${input.redisUrl}"`,
          `  hmacKeyEnv: ${DEMO_REDIS_HMAC_KEY_ENV}  # authenticates what pullgate stores in Redis`,
        ]
      : []),
    "upstreams:",
    "  - name: demo-registry",
    `    url: "${input.registryUrl}"`,
    "projects:",
    "  demo:",
    "    mode: enforce",
    "    keys:",
    `      - name: ${input.keyName}`,
    // The demo signs without a transparency log (no Rekor here): keys require one by default.
    "        transparencyLog: optional",
    "        pem: |",
    ...pem,
    "",
  ].join("\n");
}
