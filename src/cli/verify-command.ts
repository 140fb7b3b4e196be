import { ConfigError, loadConfig } from "../config/index.ts";

export const VERIFY_USAGE = `usage: pullgate verify REFERENCE [--admin URL] [--upstream NAME] [--config FILE] [--json]

  The dry run from the shell (POST /admin/v1/verify of a running pullgate): the decision pullgate
  would make for REFERENCE now, why, and every signature and attestation it considered. Nothing is
  cached, nothing is pulled.

  REFERENCE        proj/app:v1, proj/app@sha256:…, or the reference you pulled through pullgate
                   (127.0.0.1:5050/proj/app:v1)
  --admin URL      the admin listener (default: admin.listen of --config / $PULLGATE_CONFIG, else
                   http://127.0.0.1:5051)
  --upstream NAME  judge it as pulled from this upstream
  --json           print the admin API's JSON answer as is
  Token: $PULLGATE_ADMIN_TOKEN (a token or JWT with the read role), sent as a Bearer header.
  Exit: 0 allowed (or not enforced), 1 denied or could not be judged, 2 usage or admin API errors.
`;

interface VerifyAnswer {
  outcome?: string;
  reason?: string;
  detail?: string;
  /** The words of the 403 a client pulling it now would get. */
  message?: string;
  unavailable?: string;
  project?: string;
  mode?: string;
  digest?: string;
  upstream?: string;
  repository?: string;
  key?: string;
  signers?: string[];
  signatures?: Array<Record<string, unknown>>;
  attestations?: Array<Record<string, unknown>>;
  errors?: Array<{ code?: string; message?: string }>;
}

/** `pullgate verify REFERENCE`: asks a running pullgate's admin API for the dry run and prints it. */
export async function runVerifyCommand(argv: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const args = parseArgs(argv, env);
  if (typeof args === "number") return args;
  const token = env.PULLGATE_ADMIN_TOKEN;
  if (!token) {
    process.stderr.write("pullgate verify: set PULLGATE_ADMIN_TOKEN to an admin token (read role)\n");
    return 2;
  }
  let res: Response;
  try {
    res = await fetch(new URL("/admin/v1/verify", args.admin), {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({
        reference: args.reference,
        ...(args.upstream ? { upstream: args.upstream } : {}),
      }),
      signal: AbortSignal.timeout(120_000),
    });
  } catch (err) {
    process.stderr.write(
      `pullgate verify: cannot reach the admin API at ${args.admin}: ${(err as Error).message}\n`,
    );
    return 2;
  }
  const body = (await res.json().catch(() => ({}))) as VerifyAnswer;
  if (!res.ok) {
    const e = body.errors?.[0];
    process.stderr.write(
      `${`pullgate verify: ${res.status} ${e?.code ?? ""} ${e?.message ?? ""}`.trimEnd()}\n`,
    );
    return 2;
  }
  process.stdout.write(args.json ? `${JSON.stringify(body, null, 2)}\n` : describe(args.reference, body));
  return body.outcome === "allow" || body.outcome === "off" || body.outcome === "exempt" ? 0 : 1;
}

function describe(reference: string, a: VerifyAnswer): string {
  const lines = [
    `${reference} → ${a.upstream ?? "?"}/${a.repository ?? "?"}@${a.digest ?? "?"}`,
    `project ${a.project ?? "?"} (mode ${a.mode ?? "?"}): ${String(a.outcome).toUpperCase()}${a.reason ? ` ${a.reason}` : ""}`,
  ];
  if (a.message) lines.push(`  ${a.message}`);
  else if (a.detail) lines.push(`  ${a.detail}`);
  if (a.unavailable) lines.push(`  ${a.unavailable}`);
  if (a.signers?.length) lines.push(`signed by: ${a.signers.join(", ")}`);
  for (const s of a.signatures ?? []) lines.push(`signature  ${line(s)}`);
  for (const s of a.attestations ?? []) {
    lines.push(`attestation ${line(s)}${s.predicateType ? ` ${String(s.predicateType)}` : ""}`);
    for (const r of (s.requirements as Array<Record<string, unknown>> | undefined) ?? [])
      lines.push(
        `  ${String(r.attestation)}: ${String(r.result)}${r.detail ? ` (${String(r.detail)})` : ""}`,
      );
  }
  return `${lines.join("\n")}\n`;
}

function line(s: Record<string, unknown>): string {
  const who = s.key
    ? ` by ${String(s.key)}`
    : s.subject
      ? ` by ${String(s.subject)} (${String(s.issuer ?? "")})`
      : "";
  const entry = s.logEntry as { logIndex?: string } | undefined;
  const logged = entry?.logIndex ? `, log index ${entry.logIndex}` : "";
  const detail = s.detail ? `: ${String(s.detail)}` : "";
  return `${String(s.format)} ${String(s.result)}${who}${logged}${detail}`;
}

function parseArgs(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { reference: string; admin: string; upstream: string | undefined; json: boolean } | number {
  let reference: string | undefined;
  let admin: string | undefined;
  let upstream: string | undefined;
  let configPath = env.PULLGATE_CONFIG || undefined;
  let json = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${arg} needs a value`);
      return v;
    };
    try {
      if (arg === "--help" || arg === "-h") {
        process.stdout.write(VERIFY_USAGE);
        return 0;
      }
      if (arg === "--admin") admin = value();
      else if (arg === "--upstream") upstream = value();
      else if (arg === "--config" || arg === "-c") configPath = value();
      else if (arg === "--json") json = true;
      else if (arg.startsWith("-") || reference !== undefined)
        throw new Error(`unexpected ${JSON.stringify(arg)}`);
      else reference = arg;
    } catch (err) {
      process.stderr.write(`pullgate verify: ${(err as Error).message}\n${VERIFY_USAGE}`);
      return 2;
    }
  }
  if (reference === undefined) {
    process.stderr.write(`pullgate verify: which image?\n${VERIFY_USAGE}`);
    return 2;
  }
  if (admin === undefined && configPath !== undefined) {
    try {
      const { host, port } = loadConfig({ path: configPath, env }).admin.listen;
      const h =
        host === "0.0.0.0" ? "127.0.0.1" : host === "::" ? "[::1]" : host.includes(":") ? `[${host}]` : host;
      admin = `http://${h}:${port}`;
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      process.stderr.write(`pullgate verify: ${err.message}\n`);
      return 2;
    }
  }
  return { reference, admin: admin ?? "http://127.0.0.1:5051", upstream, json };
}
