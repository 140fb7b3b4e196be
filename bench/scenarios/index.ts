import type { Scenario } from "../scenario.ts";
import { blobScenario } from "./blob.ts";
import { coldPull } from "./cold.ts";
import { denialsScenario } from "./denials.ts";
import { herdScenario } from "./herd.ts";
import { scaleScenario } from "./scale.ts";
import { warmGetByDigest, warmPull } from "./warm.ts";

/** The scenarios, in run order. */
export function scenarios(): Scenario[] {
  return [
    warmPull(8),
    warmPull(1),
    warmGetByDigest(8),
    coldPull(),
    herdScenario(),
    blobScenario(),
    scaleScenario(),
    denialsScenario(),
  ];
}
