/**
 * The pullgate.yaml the demo runs with, printed for the user to start from. It holds no secret: the
 * admin token is handed to pullgate through PULLGATE_ADMIN_TOKEN, and the trusted key is the public
 * key, inline, so the printed file stays valid after the demo removed its temp dir.
 */
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
    ...(input.redisUrl ? ["redis:", `  url: "${input.redisUrl}"`] : []),
    "upstreams:",
    "  - name: demo-registry",
    `    url: "${input.registryUrl}"`,
    "projects:",
    "  demo:",
    "    mode: enforce",
    "    keys:",
    `      - name: ${input.keyName}`,
    "        pem: |",
    ...pem,
    "",
  ].join("\n");
}
