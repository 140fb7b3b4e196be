import { type ChildProcess, spawn } from "node:child_process";
import { Secret, type UpstreamCredentials } from "../config/index.ts";

/** stdout and stderr are each read up to this much; a helper that prints more is killed. */
export const MAX_HELPER_OUTPUT_BYTES = 64 * 1024;
/** How much of a failing helper's message is repeated in the error. */
const MAX_EXCERPT_CHARS = 200;
/** After the deadline kill, how long the pipes may stay open (a grandchild holding them) before giving up. */
const PIPE_GRACE_MS = 1_000;

export interface CredentialHelperOptions {
  /** `ecr-login` runs `docker-credential-ecr-login`. */
  helper: string;
  /** Written to the helper's stdin: the registry as docker names it (`123.dkr.ecr.us-east-1.amazonaws.com`). */
  serverUrl: string;
  timeoutMs: number;
  /** The helper's environment; its PATH also finds the program. Default: this process's. */
  env?: NodeJS.ProcessEnv;
  maxOutputBytes?: number;
}

/** Why a helper gave no credentials; the message names the helper and never holds its output's secret. */
export class CredentialHelperError extends Error {
  readonly code = "CREDENTIAL_HELPER_FAILED";
  readonly program: string;
  constructor(program: string, reason: string) {
    super(`credential helper ${program} failed: ${reason}`);
    this.name = "CredentialHelperError";
    this.program = program;
  }
}

/**
 * `docker-credential-<helper> get`, the Docker credential-helper protocol (docker, containerd's CRI and
 * kubelet speak it; docker/docker-credential-helpers): the server URL on stdin, `{"ServerURL",
 * "Username","Secret"}` on stdout, or a non-zero exit with a message on stdout or stderr.
 *
 * No shell: the program is found on `env.PATH` and started with an argument vector. Bounded: a deadline
 * (the helper and everything it started are killed: it runs in a process group of its own), a cap on
 * each output stream, and the error's excerpt of what the helper said. The secret exists only in the
 * returned Secret: a malformed answer is never quoted back.
 */
export function runCredentialHelper(opts: CredentialHelperOptions): Promise<UpstreamCredentials> {
  const program = `docker-credential-${opts.helper}`;
  const maxBytes = opts.maxOutputBytes ?? MAX_HELPER_OUTPUT_BYTES;
  return new Promise((resolve, reject) => {
    let settled = false;
    let deadline: NodeJS.Timeout | undefined;
    let grace: NodeJS.Timeout | undefined;
    const finish = (err: CredentialHelperError | undefined, value?: UpstreamCredentials): void => {
      if (settled) return;
      settled = true;
      clearTimeout(deadline);
      clearTimeout(grace);
      if (err) reject(err);
      else resolve(value as UpstreamCredentials);
    };
    const fail = (reason: string) => finish(new CredentialHelperError(program, reason));

    let child: ChildProcess;
    try {
      child = spawn(program, ["get"], {
        env: opts.env ?? process.env,
        stdio: ["pipe", "pipe", "pipe"],
        shell: false,
        // Its own process group: a deadline kills whatever it started too.
        detached: true,
        windowsHide: true,
      });
    } catch (err) {
      fail(`could not start ${program} (${(err as NodeJS.ErrnoException).code ?? "error"})`);
      return;
    }
    const killGroup = (): void => {
      try {
        if (child.pid !== undefined) process.kill(-child.pid, "SIGKILL");
      } catch {
        child.kill("SIGKILL"); // the group is gone already
      }
    };
    const stdout = new BoundedText(maxBytes);
    const stderr = new BoundedText(maxBytes);
    let overflow = false;
    let killedAtDeadline = false;
    deadline = setTimeout(() => {
      killedAtDeadline = true;
      killGroup();
      // 'close' normally follows the kill at once; pipes held open elsewhere must not hold the caller.
      grace = setTimeout(() => {
        child.stdout?.destroy();
        child.stderr?.destroy();
        fail(`did not answer within ${opts.timeoutMs} ms (killed)`);
      }, PIPE_GRACE_MS);
    }, opts.timeoutMs);
    const collect = (text: BoundedText) => (chunk: Buffer) => {
      if (!text.add(chunk) && !overflow) {
        overflow = true;
        killGroup();
      }
    };
    child.stdout?.on("data", collect(stdout));
    child.stderr?.on("data", collect(stderr));
    child.stdin?.on("error", () => {}); // a helper that exits without reading stdin (EPIPE)
    child.stdin?.end(opts.serverUrl);

    child.on("error", (err: NodeJS.ErrnoException) => {
      if (err.code === "ENOENT") fail(`${program} not found on PATH`);
      else if (err.code === "EACCES") fail(`${program} is not executable`);
      else fail(`could not start ${program} (${err.code ?? "error"})`);
    });
    child.on("close", (code, signal) => {
      if (overflow) return fail(`printed more than ${maxBytes} bytes (killed)`);
      if (killedAtDeadline) return fail(`did not answer within ${opts.timeoutMs} ms (killed)`);
      if (code !== 0) {
        const said = excerpt(stderr.text()) || safeStdoutExcerpt(stdout.text());
        const how = code !== null ? `exit ${code}` : `killed by ${signal ?? "a signal"}`;
        return fail(`${how}${said ? `: ${said}` : ""}`);
      }
      const parsed = parseHelperAnswer(stdout.text());
      if (typeof parsed === "string") return fail(parsed);
      finish(undefined, parsed);
    });
  });
}

/** The helper's JSON answer as credentials, or what is wrong with it (never quoting it). */
export function parseHelperAnswer(text: string): UpstreamCredentials | string {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return "its output is not the credential-helper JSON ({ServerURL, Username, Secret})";
  }
  if (!json || typeof json !== "object" || Array.isArray(json)) {
    return "its output is not a JSON object with Username and Secret";
  }
  const { Username: username, Secret: secret } = json as { Username?: unknown; Secret?: unknown };
  if (typeof username !== "string" || username === "") return "its answer has no Username";
  if (typeof secret !== "string" || secret === "") return "its answer has no Secret";
  if (username === "<token>") {
    // docker's convention for an OAuth2 refresh token (identity token), which needs another exchange.
    return "it answered with an identity token (Username <token>), which pullgate does not support";
  }
  if (/[\0\r\n]/.test(username) || username.includes(":")) return "its Username is not usable in HTTP Basic";
  return { username, password: new Secret(secret) };
}

/** What a failing helper printed on stdout (docker's helpers report errors there), unless it may be an answer. */
function safeStdoutExcerpt(text: string): string {
  if (/[{}]|secret/i.test(text)) return "";
  return excerpt(text);
}

/** One line, printable, bounded. */
function excerpt(text: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: stripping control characters is the point
  const line = text.replace(/[\u0000-\u001f\u007f]+/g, " ").trim();
  return line.length > MAX_EXCERPT_CHARS ? `${line.slice(0, MAX_EXCERPT_CHARS)}…` : line;
}

/** Collects a stream's bytes up to a cap; add() says false once the cap is passed. */
class BoundedText {
  readonly #max: number;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  constructor(max: number) {
    this.#max = max;
  }
  add(chunk: Buffer): boolean {
    if (this.#size + chunk.length > this.#max) return false;
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    return true;
  }
  text(): string {
    return Buffer.concat(this.#chunks).toString("utf8");
  }
}
