import { sharedKeylessSigner } from "../keyless-pullgate.ts";
import type { Scenario } from "../scenario.ts";
import { blobScenario } from "./blob.ts";
import { coldPull } from "./cold.ts";
import { coldAttestedPull } from "./cold-attested.ts";
import { coldKeylessPull } from "./cold-keyless.ts";
import { denialsScenario } from "./denials.ts";
import { herdScenario } from "./herd.ts";
import { keylessWarmUnderHerd } from "./keyless-herd.ts";
import { scaleScenario } from "./scale.ts";
import { warmGetByDigest, warmPull } from "./warm.ts";

/** The scenarios, in run order. */
export function scenarios(): Scenario[] {
  // The keyless scenarios share one private Sigstore, made when the first of them is set up.
  const keylessSigner = sharedKeylessSigner();
  return [
    warmPull(8),
    warmPull(1),
    warmGetByDigest(8),
    coldPull(),
    herdScenario(),
    blobScenario(),
    scaleScenario(),
    denialsScenario(),
    coldKeylessPull(keylessSigner),
    keylessWarmUnderHerd(keylessSigner),
    coldAttestedPull(keylessSigner),
  ];
}
