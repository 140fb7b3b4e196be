// A verification worker thread (piscina): judges one digest's evidence with the policy's authorities,
// rebuilt here from plain data (keys and trust material do not cross threads), each parsed once per thread.
import {
  type Authority,
  compileRequirements,
  compileSignerIdentity,
  judgeSignatures,
  parseTrustedKey,
  parseTrustRoot,
  type Requirements,
  type RequirementsSpec,
  type TrustedKey,
  type TrustRoot,
  type Verdict,
} from "../verify/index.ts";
import type { JudgeTask } from "./verification-pool.ts";
import { lowerThisThreadsPriority } from "./verification-thread.ts";

lowerThisThreadsPriority();

const roots = new Map<string, TrustRoot>();
const keys = new Map<string, TrustedKey>();
const requirementsByText = new Map<string, Requirements>();

/** The requirements compiled once per text (they compiled when the policy was built: a problem here is a bug). */
function requirementsOf(spec: RequirementsSpec | undefined): Requirements | undefined {
  if (spec === undefined) return undefined;
  const text = JSON.stringify(spec);
  let compiled = requirementsByText.get(text);
  if (!compiled) {
    const r = compileRequirements(spec);
    if ("problems" in r) throw new Error(`requirements do not compile: ${r.problems.join("; ")}`);
    if (requirementsByText.size >= 256) requirementsByText.clear();
    requirementsByText.set(text, r);
    compiled = r;
  }
  return compiled;
}

export default function judge(task: JudgeTask): Verdict {
  const authorities: Authority[] = task.authorities.map((a) => {
    let root = roots.get(a.root.sha256);
    if (!root) {
      root = parseTrustRoot(a.root.name, a.root.json);
      if (roots.size >= 64) roots.clear();
      roots.set(a.root.sha256, root);
    }
    if (a.kind === "key") {
      let key = keys.get(`${a.name}\u0000${a.pem}`);
      if (!key) {
        key = parseTrustedKey({ name: a.name, pem: a.pem });
        if (keys.size >= 1024) keys.clear();
        keys.set(`${a.name}\u0000${a.pem}`, key);
      }
      return {
        kind: "key",
        name: a.name,
        key,
        transparencyLog: a.transparencyLog,
        root,
        notBefore: a.notBefore,
        notAfter: a.notAfter,
      };
    }
    return { kind: "keyless", name: a.name, identity: compileSignerIdentity(a.spec), root };
  });
  return judgeSignatures({
    digest: task.digest,
    authorities,
    evidence: task.evidence,
    ...(task.repository ? { repository: task.repository } : {}),
    requirements: requirementsOf(task.requirements),
    now: task.now,
  });
}
