import { describe, expect, it } from "vitest";
import { checkArtifactBlob } from "./signature-artifact.ts";

// Every image-config field is read the way Go clients read it: a key that case-folds onto a field
// but is spelled otherwise is refused, for each field (not only those that decide what runs).

const check = (doc: unknown) => checkArtifactBlob("image-config", Buffer.from(JSON.stringify(doc)));
const shout = (field: string) => field.toUpperCase();

describe("image config: case folding of every field", () => {
  const rootFields = ["architecture", "os", "config", "rootfs", "history", "created", "author", "variant"];
  const configFields = ["Entrypoint", "Cmd", "Env", "User", "WorkingDir", "Labels", "Volumes"];

  it.each(rootFields)("the config's %s", (field) => {
    expect(check({ [field]: null })).toBeUndefined();
    expect(check({ [shout(field)]: null })).toBe(
      `the config has the key ${JSON.stringify(shout(field))}, which Go clients read as ${JSON.stringify(field)}`,
    );
  });

  it.each(configFields)("the config's config's %s", (field) => {
    expect(check({ config: { [field]: null } })).toBeUndefined();
    expect(check({ config: { [field.toLowerCase()]: null } })).toBe(
      `the config's config has the key ${JSON.stringify(field.toLowerCase())}, which Go clients read as ${JSON.stringify(field)}`,
    );
  });

  it("the long s folds like Go's", () => {
    // Go's EqualFold folds U+017F onto s.
    expect(check({ config: { "U\u017Fer": "root" } })).toMatch(/which Go clients read as "User"/);
  });
});
