import { Secret } from "./secret.ts";

/** One `user:hash` line of an htpasswd file; the hash is kept out of logs and error messages. */
export interface HtpasswdEntry {
  username: string;
  hash: Secret;
}

/** bcrypt as `htpasswd -B` writes it ($2y$), or as other tools do ($2a$, $2b$): cost 4..31, 53 chars. */
const BCRYPT_HASH = /^\$2[aby]\$(?:0[4-9]|[12]\d|3[01])\$[./A-Za-z0-9]{53}$/;

/**
 * Parses an htpasswd file. Only bcrypt entries are accepted: MD5 ($apr1$), SHA1 ({SHA}), crypt and
 * plain text are problems, reported by line number and user (never with the hash). Blank lines and
 * lines starting with `#` are skipped, as Apache and distribution do.
 */
export function parseHtpasswd(text: string): { entries: HtpasswdEntry[]; problems: string[] } {
  const entries: HtpasswdEntry[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) return;
    const at = `line ${i + 1}`;
    const colon = line.indexOf(":");
    if (colon <= 0) {
      problems.push(`${at}: expected "user:bcrypt-hash"`);
      return;
    }
    const username = line.slice(0, colon);
    const hash = line.slice(colon + 1);
    if (!BCRYPT_HASH.test(hash)) {
      problems.push(
        `${at} (${JSON.stringify(username)}): not a bcrypt hash; only bcrypt entries ($2y$, $2a$, $2b$) are accepted, create them with \`htpasswd -B\``,
      );
      return;
    }
    if (seen.has(username)) {
      problems.push(`${at}: duplicate user ${JSON.stringify(username)}`);
      return;
    }
    seen.add(username);
    entries.push({ username, hash: new Secret(hash) });
  });
  return { entries, problems };
}
