/**
 * Repository globs for `exempt`: `*` matches within one path segment (any characters but `/`), `**`
 * across segments (any characters). "proj/tools/*" matches "proj/tools/x" but not "proj/tools/x/y";
 * "proj/**" matches everything under proj/. Every other character matches itself only. A run of
 * three or more stars is a `**` (what `**` followed by `*` means anyway).
 *
 * Linear time, whatever the glob: a compiled glob is a tiny NFA whose states are positions in the
 * glob (state i = "the first i tokens matched"), and matching simulates it over the repository name
 * with the set of live states held in an array, one pass over the states per character. That is at
 * most `(len(name) + 1) × len(glob)` steps, with no regex, no recursion and no backtracking, so a
 * glob like `proj/**a**a**a**a**b` (which froze a backtracking RegExp for seconds on a 165-character
 * name) costs the same few thousand steps as any other. `testCountingSteps` reports the count, so
 * tests prove the bound by counting instead of timing.
 */

const LITERAL = 0;
/** `*`: any characters but `/`. */
const STAR = 1;
/** `**`: any characters. */
const GLOBSTAR = 2;

const SLASH = 0x2f;

export interface GlobMatch {
  matches: boolean;
  /** States examined: at most `(repository.length + 1) × (number of tokens)`, tokens ≤ glob length. */
  steps: number;
}

export class RepositoryGlob {
  readonly source: string;
  /** Per token: LITERAL, STAR or GLOBSTAR. */
  readonly #kinds: Uint8Array;
  /** Per LITERAL token: its UTF-16 code unit (the same units a RegExp without `u` compares). */
  readonly #chars: Uint16Array;

  constructor(glob: string) {
    this.source = glob;
    const kinds: number[] = [];
    const chars: number[] = [];
    for (let i = 0; i < glob.length; ) {
      if (glob.charCodeAt(i) === 0x2a) {
        let run = 0;
        while (glob.charCodeAt(i) === 0x2a) {
          run++;
          i++;
        }
        kinds.push(run === 1 ? STAR : GLOBSTAR);
        chars.push(0);
      } else {
        kinds.push(LITERAL);
        chars.push(glob.charCodeAt(i));
        i++;
      }
    }
    this.#kinds = Uint8Array.from(kinds);
    this.#chars = Uint16Array.from(chars);
  }

  /** Whether the whole of `repository` matches the glob. */
  test(repository: string): boolean {
    return this.testCountingSteps(repository).matches;
  }

  /** `test`, with the number of NFA states examined (for tests proving the linear bound). */
  testCountingSteps(repository: string): GlobMatch {
    const kinds = this.#kinds;
    const chars = this.#chars;
    const m = kinds.length;
    // live[i] = 1: the first i tokens can match the input read so far. Two buffers, swapped per character.
    let live = new Uint8Array(m + 1);
    let next = new Uint8Array(m + 1);
    let steps = 0;
    // Start: state 0, plus the states reachable by letting leading stars match nothing.
    live[0] = 1;
    for (let i = 0; i < m && live[i] === 1 && kinds[i] !== LITERAL; i++) {
      steps++;
      live[i + 1] = 1;
    }
    for (let p = 0; p < repository.length; p++) {
      const c = repository.charCodeAt(p);
      next.fill(0);
      let any = false;
      // One forward pass: every edge goes from state i to i or i + 1, so by the time i is reached,
      // next[i] is final and its empty-match edge (a star matching nothing) can be followed at once.
      for (let i = 0; i < m; i++) {
        steps++;
        const kind = kinds[i];
        if (kind === LITERAL) {
          if (live[i] === 1 && chars[i] === c) next[i + 1] = 1;
        } else {
          if (live[i] === 1 && (kind === GLOBSTAR || c !== SLASH)) next[i] = 1;
          if (next[i] === 1) next[i + 1] = 1;
        }
        if (next[i] === 1) any = true;
      }
      if (next[m] === 1) any = true;
      if (!any) return { matches: false, steps };
      const t = live;
      live = next;
      next = t;
    }
    return { matches: live[m] === 1, steps };
  }
}

export function compileRepositoryGlob(glob: string): RepositoryGlob {
  return new RepositoryGlob(glob);
}

export function matchesAnyGlob(globs: readonly RepositoryGlob[], repository: string): boolean {
  return globs.some((g) => g.test(repository));
}
