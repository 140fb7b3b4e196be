import { describe, expect, it } from "vitest";
import { UnavailableBursts } from "./unavailable-bursts.ts";

describe("UnavailableBursts", () => {
  it("reports nothing below the threshold, then the whole burst, then each next failure of it", () => {
    const b = new UnavailableBursts({ threshold: 3, windowMs: 60_000 });
    expect(b.observe("proj", "hub", 0)).toBeUndefined();
    expect(b.observe("proj", "hub", 10_000)).toBeUndefined();
    expect(b.observe("proj", "hub", 20_000)).toEqual({ count: 3, firstSeen: 0 });
    expect(b.observe("proj", "hub", 30_000)).toEqual({ count: 1, firstSeen: 30_000 });
    expect(b.observe("proj", "hub", 85_000)).toEqual({ count: 1, firstSeen: 85_000 });
  });

  it("a burst ends after a quiet window; a new one needs the threshold again", () => {
    const b = new UnavailableBursts({ threshold: 2, windowMs: 1_000 });
    expect(b.observe("p", "u", 0)).toBeUndefined();
    expect(b.observe("p", "u", 500)).toEqual({ count: 2, firstSeen: 0 });
    expect(b.observe("p", "u", 5_000)).toBeUndefined();
    expect(b.observe("p", "u", 5_400)).toEqual({ count: 2, firstSeen: 5_000 });
  });

  it("counts only failures within the window", () => {
    const b = new UnavailableBursts({ threshold: 3, windowMs: 1_000 });
    for (const t of [0, 600, 1_200, 1_800]) expect(b.observe("p", "u", t)).toBeUndefined();
    expect(b.observe("p", "u", 2_100)).toEqual({ count: 3, firstSeen: 1_200 });
  });

  it("keeps (project, upstream) pairs apart", () => {
    const b = new UnavailableBursts({ threshold: 2, windowMs: 60_000 });
    expect(b.observe("a", "hub", 0)).toBeUndefined();
    expect(b.observe("b", "hub", 1)).toBeUndefined();
    expect(b.observe("a", "ghcr", 2)).toBeUndefined();
    expect(b.observe("a", "hub", 3)).toEqual({ count: 2, firstSeen: 0 });
  });

  it("threshold 1: every failure reports", () => {
    const b = new UnavailableBursts({ threshold: 1, windowMs: 1_000 });
    expect(b.observe("p", "u", 0)).toEqual({ count: 1, firstSeen: 0 });
    expect(b.observe("p", "u", 10)).toEqual({ count: 1, firstSeen: 10 });
  });

  it("tracks a bounded number of pairs (the least recently seen go first)", () => {
    const b = new UnavailableBursts({ threshold: 2, windowMs: 60_000, maxKeys: 10 });
    b.observe("keep", "u", 0);
    for (let i = 0; i < 100; i++) {
      b.observe(`p${i}`, "u", i);
      if (i % 5 === 0) b.observe("keep", "u", 1_000 + i) && b.observe("keep", "u", 1_000 + i);
    }
    expect(b.size).toBe(10);
  });
});
