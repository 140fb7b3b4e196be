/**
 * WWW-Authenticate parsing (RFC 7235 auth-params), enough for registries: `Bearer realm="…",
 * service="…",scope="…"` and `Basic realm="…"`. Unknown schemes are returned as such.
 */
export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export function parseChallenges(header: string | undefined): Challenge[] {
  if (!header) return [];
  const out: Challenge[] = [];
  const re = /\s*([A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*)(?:\s+|$)/y;
  const paramRe = /\s*([A-Za-z0-9!#$%&'*+.^_`|~-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*(,?)/y;
  let pos = 0;
  while (pos < header.length) {
    re.lastIndex = pos;
    const m = re.exec(header);
    if (!m) break;
    const challenge: Challenge = { scheme: (m[1] as string).toLowerCase(), params: {} };
    pos = re.lastIndex;
    for (;;) {
      paramRe.lastIndex = pos;
      const p = paramRe.exec(header);
      if (!p) break;
      const value = p[2] !== undefined ? p[2].replace(/\\(.)/g, "$1") : (p[3] ?? "");
      challenge.params[(p[1] as string).toLowerCase()] = value;
      pos = paramRe.lastIndex;
      if (p[4] !== ",") break;
      // A following "scheme " (token then space, no "=") starts the next challenge.
      if (/^\s*[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]*\s+[A-Za-z0-9!#$%&'*+.^_`|~-]+\s*=/.test(header.slice(pos)))
        break;
    }
    out.push(challenge);
    while (pos < header.length && (header[pos] === "," || header[pos] === " ")) pos++;
  }
  return out;
}
