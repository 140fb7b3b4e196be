import { mkdir } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { createKeylessSigner, type KeylessSigner } from "./keyless-images.ts";
import type { Env } from "./scenario.ts";
import type { PullgateServer } from "./servers.ts";

/** Worker threads of pullgate's verification pool on this machine (src/pull/verification-pool.ts's default). */
export const POOL_THREADS = Math.max(1, availableParallelism() - 1);

/** The private Sigstore of a bench run, made on first use (in the run's temp dir) and shared by the scenarios. */
export type SharedKeylessSigner = (env: Env) => Promise<KeylessSigner>;

export function sharedKeylessSigner(): SharedKeylessSigner {
  let signer: Promise<KeylessSigner> | undefined;
  return (env) => {
    signer ??= (async () => {
      const dir = join(env.tmp, "keyless");
      await mkdir(dir, { recursive: true });
      return createKeylessSigner(dir);
    })();
    return signer;
  };
}

/**
 * A pullgate process in front of the bench's registry enforcing the keyless policy (and sharing the bench's
 * Redis), sampled as `name`; the caller stops it with env.stop (or cleanup does).
 */
export function startKeylessPullgate(env: Env, name: string, signer: KeylessSigner): Promise<PullgateServer> {
  return env.startPullgate(name, env.registry.url, {
    policy: { projects: signer.projects, trustedRoots: signer.trustedRoots },
  });
}
