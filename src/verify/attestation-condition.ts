import {
  type CelError,
  type CelFunc,
  CelScalar,
  type CelValue,
  celEnv,
  celFunc,
  celList,
  celMethod,
  celType,
  isCelError,
  isCelList,
  isCelMap,
  listType,
  parse,
  plan,
} from "@bufbuild/cel";

/**
 * CEL conditions on attestations (a policy's `attestations[].condition`): a CEL expression over the
 * verified in-toto statement with three variables, `predicate` (the predicate JSON, dyn), `predicateType`
 * (string) and `subject` (the statement's subject list). Compiled once when the configuration is loaded
 * (`compileCondition`: a config problem in words, with the position), evaluated at pull time
 * (`evaluateCondition`: a bool, or why not; never throws) with a bounded cost.
 *
 * The evaluator is @bufbuild/cel 0.6.1, with its standard library only (operators, size, contains,
 * startsWith, endsWith, matches (RE2), conversions, timestamps and durations, and the macros has, all,
 * exists, exists_one, map, filter). Its strings extension is not enabled: its `replace` rebuilds and
 * rescans the string per occurrence (quadratic) and `format` renders nested values, and neither has a
 * cost entry here. The library offers no cost limit, no step hook and no interruption, and its type
 * checker is neither exported nor complete (constants and identifiers only). What this file adds:
 *
 * - At load: the source is at most 4 KiB; a parse error names its line and column; the expression
 *   tree (after macro expansion) is at most 64 deep with comprehensions nested at most 3 deep; it may
 *   name only the three variables, its comprehension variables and type names, and only standard
 *   functions with an overload of that arity; integer literals fit 64 bits; no message construction.
 *   Its result type is inferred where the tree shows it (literals, the two typed variables, operators
 *   and functions whose overloads for the argument types agree, the macros): anything but bool or dyn
 *   is refused. `predicate.x` is dyn, so a non-bool there is an evaluation problem.
 * - At evaluation, a budget of cost units (`CONDITION_LIMITS.cost`, Kubernetes' per-expression
 *   limit), charged by the program itself: the tree is rewritten before planning so that every
 *   comprehension charges its range's size when it starts and its body's node count per iteration,
 *   map/filter append to their result in place (the library concatenates lazily, which makes using a
 *   map() result quadratic and overflows the stack near 10 000 elements), and indexing a map with a
 *   number charges the map's size (the library scans every key for it). Every standard function is
 *   replaced by a wrapper with the same signature that charges 1 plus what its arguments' sizes make
 *   it cost (strings 1 per 10 characters read, 1 per character built; `==` and `in` by the structure
 *   they compare; `matches` by text length × an upper bound of the pattern's compiled size) before it
 *   calls the original. Once the budget is spent every charge fails, so every loop stops at its next
 *   iteration and what remains is at most the tree once. Stack traces are off while it runs (the
 *   library makes an Error for every failed step; this makes them 7 times cheaper, and no trace can
 *   reach a message).
 * - The statement is converted into CEL values once per evaluation, bounded: 64 levels, 100 000
 *   values, strings (and keys) of at most 1 MiB; a bigger one is an evaluation problem, never an
 *   exception. Objects become maps (so `__proto__` or `constructor` are ordinary keys).
 *
 * JSON numbers are CEL doubles (CEL's JSON mapping and the library's, whatever the value: a field's
 * type does not change with its data). Equality and ordering are heterogeneous (`critical == 0` and
 * `critical < 1` hold for `"critical": 0`), arithmetic is not (`critical + 1` has no overload; write
 * `int(critical) + 1` or `critical + 1.0`). A missing key is an evaluation problem (`no such key`), as
 * in Kubernetes; `has(predicate.a.b)` guards. The library's `has()` is false for a key whose value is
 * null (CEL says true).
 */

/** The bounds, and why (see the file comment for what each one bounds). */
export const CONDITION_LIMITS = Object.freeze({
  /** Longest condition, in UTF-8 bytes (Kubernetes admits far longer; a policy condition is a line). */
  sourceBytes: 4096,
  /** Deepest expression tree after macro expansion (cel-go's parser stops at 250; 64 is ample). */
  expressionDepth: 64,
  /** Comprehensions inside comprehensions (3 covers subject × digest × predicate list). */
  comprehensionNesting: 3,
  /**
   * Cost units per evaluation (Kubernetes' per-expression runtime limit). Measured on 2 shared cores:
   * spent in full it took 15–90 ms, and 170–190 ms when every step fails (the library makes an Error
   * per failed step); one pass over a 100 000-element list with a simple body fits.
   */
  cost: 1_000_000,
  /** Deepest JSON nesting of the statement. */
  inputDepth: 64,
  /** JSON values in predicate and subject together (containers, scalars). */
  inputValues: 100_000,
  /** Longest string or key in the statement, and longest string or bytes a condition may build. */
  stringLength: 1 << 20,
});

/** A condition parsed, checked and planned; only this module's functions can evaluate it. */
export interface CompiledCondition {
  /** The condition as written (for messages, views and fingerprints). */
  readonly source: string;
}

/** What a condition sees of a verified in-toto statement. */
export interface ConditionStatement {
  predicateType: string;
  predicate: unknown;
  subject: readonly unknown[];
}

export type ConditionResult = { ok: true; value: boolean } | { ok: false; problem: string };

/** Parses and checks a condition once; a problem is worded for a configuration error. Never throws. */
export function compileCondition(source: string): CompiledCondition | { problem: string } {
  try {
    return compile(source);
  } catch (e) {
    return { problem: `condition: could not be compiled: ${printable(messageOf(e))}` };
  }
}

function compile(source: string): CompiledCondition | { problem: string } {
  if (typeof source !== "string") return { problem: "condition: not a string" };
  const bytes = utf8Length(source);
  if (bytes > CONDITION_LIMITS.sourceBytes) {
    return { problem: `condition: longer than ${CONDITION_LIMITS.sourceBytes} bytes (${bytes})` };
  }
  if (source.trim() === "") return { problem: "condition: empty" };
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse(source);
  } catch (e) {
    return { problem: `condition: ${syntaxProblem(e)}` };
  }
  const positions: Record<string, number> = { ...parsed.sourceInfo?.positions };
  const where = (id: bigint) => locate(source, positions[id.toString()]);
  const refusal = new Checker(where).check(parsed.expr);
  if (refusal !== undefined) return { problem: `condition: ${refusal}` };
  let nextId = maxId(parsed.expr) + 1n;
  const rewritten = instrument(parsed.expr, (like) => {
    const id = nextId++;
    const at = positions[like.id.toString()];
    if (at !== undefined) positions[id.toString()] = at;
    return id;
  });
  let run: Program["run"];
  try {
    const planned = plan(ENV, rewritten);
    run = (bindings) => planned(bindings as Parameters<typeof planned>[0]);
  } catch (e) {
    return { problem: `condition: ${printable(messageOf(e))}` };
  }
  const compiled: CompiledCondition = Object.freeze({ source });
  PROGRAMS.set(compiled, { run, nodes: countNodes(parsed.expr), where });
  return compiled;
}

/** Evaluates a compiled condition on a statement: its bool, or why there is none. Never throws. */
export function evaluateCondition(c: CompiledCondition, statement: ConditionStatement): ConditionResult {
  return evaluateConditionWithCost(c, statement).result;
}

/**
 * evaluateCondition, with the cost units it spent (for the dry run and measurements) and an optional
 * lower budget (tests).
 */
export function evaluateConditionWithCost(
  c: CompiledCondition,
  statement: ConditionStatement,
  costLimit: number = CONDITION_LIMITS.cost,
): { result: ConditionResult; cost: number } {
  const program = PROGRAMS.get(c);
  if (program === undefined) return { result: fail("not a compiled condition"), cost: 0 };
  const input = toBindings(statement);
  if (typeof input === "string") return { result: fail(input), cost: 0 };
  const limit = Number.isFinite(costLimit) && costLimit >= 0 ? costLimit : CONDITION_LIMITS.cost;
  const meter = new Meter(Math.min(limit, CONDITION_LIMITS.cost));
  const previous = active;
  const stackTraceLimit = Error.stackTraceLimit;
  active = meter;
  // See the file comment: no stack traces while the library runs.
  Error.stackTraceLimit = 0;
  let value: CelValue | CelError | undefined;
  let thrown: unknown;
  try {
    meter.charge(program.nodes);
    value = program.run(input);
  } catch (e) {
    thrown = e;
  } finally {
    active = previous;
    Error.stackTraceLimit = stackTraceLimit;
  }
  const cost = meter.used;
  if (meter.exceeded) return { result: fail(`cost limit exceeded (${meter.limit} units)`), cost };
  if (value === undefined) return { result: fail(describeError(messageOf(thrown))), cost };
  if (typeof value === "boolean") return { result: { ok: true, value }, cost };
  if (isCelError(value)) {
    const at = value.exprId === undefined ? "" : program.where(value.exprId);
    return { result: fail(`${describeError(value.message)}${at === "" ? "" : ` (${at})`}`), cost };
  }
  return { result: fail(`yields ${typeNameOf(value)}, not a bool`), cost };
}

// ---------------------------------------------------------------------------------------------
// Programs and the meter

type Bindings = { predicate: unknown; predicateType: string; subject: unknown[] };

interface Program {
  run: (bindings: Bindings) => CelValue | CelError;
  /** Nodes of the tree as written: charged once per evaluation. */
  nodes: number;
  /** "line L, column C" of an expression id, or "". */
  where: (id: bigint) => string;
}

const PROGRAMS = new WeakMap<CompiledCondition, Program>();

class Meter {
  used = 0;
  exceeded = false;
  /** The arrays behind the lists map/filter are building (see APPEND). */
  readonly owned = new WeakMap<object, CelValue[]>();
  readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }
  charge(units: number): void {
    this.used += units;
    if (this.used > this.limit) {
      this.exceeded = true;
      throw new Error("cost limit exceeded");
    }
  }
  get remaining(): number {
    return Math.max(0, this.limit - this.used);
  }
}

/** The meter of the evaluation under way (evaluation is synchronous). */
let active: Meter | undefined;

function meter(): Meter {
  if (active === undefined) throw new Error("a condition function ran outside evaluateCondition");
  return active;
}

const fail = (problem: string): ConditionResult => ({ ok: false, problem });

// ---------------------------------------------------------------------------------------------
// The environment: the standard library, every function metered, and the rewrite's own functions

/** 1 cost unit per this many characters (or bytes) a function reads (cel-go's factor, 0.1). */
const CHARS_PER_UNIT = 10;
/*
 * The constants below were measured (bench-style, not in tests) so that a unit costs about the same
 * time whatever spends it: an iteration of `all(x, x >= 0.0)` is 9 units.
 */
/** A timestamp accessor with a time zone builds an Intl.DateTimeFormat (~80 µs). */
const TIME_ZONE_COST = 2000;
/** Regular-expression steps (text character × compiled instruction) per cost unit. */
const REGEX_STEPS_PER_UNIT = 4;
/** Compiling a pattern (every call: the library keeps no cache), per compiled instruction. */
const REGEX_COMPILE_COST = 4;
/** Equality walks: a list or map compared (two wrappers, iterators), a list element, a map entry (a lookup). */
const CONTAINER_COST = 10;
const LIST_ELEMENT_COST = 2;
const MAP_ENTRY_COST = 4;
/** int()/uint() of a longer string is refused before BigInt parses it (superlinear in V8). */
const MAX_INT_STRING = 64;

const TICK = "@pullgate_tick";
const RANGE = "@pullgate_range";
const APPEND = "@pullgate_append";
const INDEXING = "@pullgate_indexing";

const STANDARD = [...celEnv().funcs];

const { DYN, INT } = CelScalar;

const OWN_FUNCTIONS: CelFunc[] = [
  // A comprehension's loop condition, once per iteration: the body's node count.
  celFunc(TICK, [DYN, INT], DYN, (value, nodes) => {
    meter().charge(Number(nodes));
    return value as never;
  }),
  // A comprehension's range, once when it starts (the library copies it into an array first).
  celFunc(RANGE, [DYN], DYN, (range) => {
    meter().charge(1 + (isCelList(range) || isCelMap(range) ? range.size : 0));
    return range as never;
  }),
  // map/filter's `@result + [x]`: the accumulator is invisible to the condition (`@result` cannot be
  // written), so the list it builds can grow in place.
  celFunc(APPEND, [DYN, DYN], DYN, (accu, element) => {
    const m = meter();
    m.charge(1);
    const mine = m.owned.get(accu as object);
    if (mine !== undefined) {
      mine.push(element);
      return accu as never;
    }
    if (!isCelList(accu))
      throw new Error(`no matching overload for '_+_' applied to '(${typeNameOf(accu)}, list)'`);
    m.charge(accu.size);
    const array = [...accu, element];
    const list = celList(array);
    m.owned.set(list, array);
    return list as never;
  }),
  // `m[k]` with a number k: the library's map scans every key for a uint one.
  celFunc(INDEXING, [DYN, DYN], DYN, (operand, key) => {
    meter().charge(
      1 + (isCelMap(operand) && typeof key !== "string" && typeof key !== "boolean" ? operand.size : 0),
    );
    return operand as never;
  }),
];

const ENV = celEnv({
  variables: { predicate: CelScalar.DYN, predicateType: CelScalar.STRING, subject: listType(CelScalar.DYN) },
  funcs: [...STANDARD.map(metered), ...OWN_FUNCTIONS],
});

/** `f` with the same signature (so it replaces it), charging before it runs and bounding what it builds. */
function metered(f: CelFunc): CelFunc {
  const invoke = (target: CelValue | undefined, args: CelValue[]): never => {
    const m = meter();
    m.charge(1 + callCost(f, target, args, m));
    const refusal = refusalOf(f, args);
    if (refusal !== undefined) throw new Error(refusal);
    const result = f.call(0, target, args);
    if (result === undefined) throw new Error(`no matching overload for '${f.name}'`);
    if (isCelError(result)) throw new Error(result.message);
    if (
      (typeof result === "string" || result instanceof Uint8Array) &&
      result.length > CONDITION_LIMITS.stringLength
    ) {
      throw new Error(`builds a string longer than ${CONDITION_LIMITS.stringLength} characters`);
    }
    return result as never;
  };
  if (f.target === undefined) {
    return celFunc(f.name, f.arguments, f.result, (...args: CelValue[]) => invoke(undefined, args));
  }
  return celMethod(f.name, f.target, f.arguments, f.result, function (this: CelValue, ...args: CelValue[]) {
    return invoke(this, args);
  });
}

/** What a call costs beyond 1, before it runs (or an error for a string it must not build). */
function callCost(f: CelFunc, target: CelValue | undefined, args: CelValue[], m: Meter): number {
  const [a, b] = args;
  switch (f.name) {
    case "_==_":
    case "_!=_":
      return equalityCost(a as CelValue, b as CelValue, m.remaining);
    case "@in":
      if (isCelList(b)) {
        let cost = LIST_ELEMENT_COST * b.size;
        for (const element of b) {
          if (cost > m.remaining) break;
          cost += equalityCost(element, a as CelValue, m.remaining - cost);
        }
        return cost;
      }
      return isCelMap(b) && typeof a !== "string" && typeof a !== "boolean" ? b.size : 0;
    case "_+_": {
      if (isCelList(a) && isCelList(b)) return a.size + b.size;
      const built = lengthOf(a) + lengthOf(b);
      if (built > CONDITION_LIMITS.stringLength) {
        throw new Error(`builds a string longer than ${CONDITION_LIMITS.stringLength} characters`);
      }
      return built;
    }
    case "size":
      // size(string) spreads the string into code points.
      return lengthOf(target ?? a);
    case "matches": {
      const text = typeof target === "string" ? target : "";
      const pattern = typeof a === "string" ? a : "";
      const weight = patternWeight(pattern);
      return Math.ceil(((text.length + 1) * weight) / REGEX_STEPS_PER_UNIT) + REGEX_COMPILE_COST * weight;
    }
    case "bytes":
    case "string":
      return lengthOf(a);
  }
  let cost = readCost(target);
  for (const arg of args) cost += readCost(arg);
  if (f.target?.name === "google.protobuf.Timestamp" && args.length === 1) cost += TIME_ZONE_COST;
  return cost;
}

/** Why a call must not run although it is paid for (the library would take too long), or undefined. */
function refusalOf(f: CelFunc, args: CelValue[]): string | undefined {
  const [a] = args;
  if ((f.name === "int" || f.name === "uint") && typeof a === "string" && a.length > MAX_INT_STRING) {
    return `${f.name} overflow during type conversion (a string of ${a.length} characters)`;
  }
  return undefined;
}

const lengthOf = (v: CelValue | undefined): number =>
  typeof v === "string" || v instanceof Uint8Array ? v.length : 0;

const readCost = (v: CelValue | undefined): number => Math.ceil(lengthOf(v) / CHARS_PER_UNIT);

/**
 * An upper bound of the work of the library's `equals(l, r)` (equals.js: lists and maps of equal size
 * element by element, maps by looking each key up, a number key by scanning every key), counted up
 * to `cap` (the caller's budget; beyond it the count no longer matters).
 */
function equalityCost(l: CelValue, r: CelValue, cap: number): number {
  if (typeof l === "string" && typeof r === "string") return l.length === r.length ? readCost(l) : 0;
  if (l instanceof Uint8Array && r instanceof Uint8Array) return l.length === r.length ? readCost(l) : 0;
  if (isCelList(l) && isCelList(r)) {
    if (l.size !== r.size) return 0;
    let cost = CONTAINER_COST + LIST_ELEMENT_COST * l.size;
    const right = r.values();
    for (const element of l) {
      if (cost > cap) break;
      const other = right.next();
      if (other.done === true) break;
      cost += equalityCost(element, other.value, cap - cost);
    }
    return cost;
  }
  if (isCelMap(l) && isCelMap(r)) {
    if (l.size !== r.size) return 0;
    let cost = CONTAINER_COST + MAP_ENTRY_COST * l.size;
    for (const [key, value] of l) {
      if (cost > cap) break;
      if (typeof key !== "string" && typeof key !== "boolean") cost += r.size;
      const other = r.get(key);
      if (other !== undefined) cost += equalityCost(value, other, cap - cost);
    }
    return cost;
  }
  return 0;
}

/**
 * An upper bound of the instructions RE2 compiles `pattern` into: 1 per atom or operator, a counted
 * repetition multiplying what it repeats (`\p{L}{1000}` is 1000, not 11). RE2 matches in time
 * (text length × instructions); it refuses counts over 1000, and an unbalanced pattern fails anyway.
 */
export function patternWeight(pattern: string): number {
  const CAP = 1e9;
  const groups: number[] = [0];
  let last = 0;
  const add = (w: number) => {
    groups[groups.length - 1] = Math.min(CAP, (groups[groups.length - 1] as number) + w);
  };
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i];
    if (c === "\\") {
      let j = i + 1;
      const next = pattern[j];
      if ((next === "p" || next === "P" || next === "x") && pattern[j + 1] === "{") {
        const close = pattern.indexOf("}", j);
        j = close === -1 ? pattern.length : close;
      }
      i = j;
      last = 1;
      add(1);
    } else if (c === "[") {
      let j = i + 1;
      if (pattern[j] === "^") j++;
      if (pattern[j] === "]") j++;
      while (j < pattern.length && pattern[j] !== "]") {
        if (pattern[j] === "\\") j++;
        else if (pattern[j] === "[" && pattern[j + 1] === ":") {
          const close = pattern.indexOf(":]", j + 2);
          if (close !== -1) j = close + 1;
        }
        j++;
      }
      i = j;
      last = 1;
      add(1);
    } else if (c === "(") {
      groups.push(0);
    } else if (c === ")") {
      const group = groups.length > 1 ? (groups.pop() as number) : 0;
      last = Math.min(CAP, group + 1);
      add(last);
    } else if (c === "{") {
      const counted = /^\{(\d+)(?:,(\d*))?\}/.exec(pattern.slice(i, i + 16));
      if (counted === null) {
        last = 1;
        add(1);
        continue;
      }
      const times = Math.max(Number(counted[1]), Number(counted[2] || 0));
      add(last * Math.max(0, times - 1));
      last = Math.min(CAP, last * times);
      i += counted[0].length - 1;
    } else {
      last = 1;
      add(1);
    }
  }
  return groups.reduce((sum, w) => Math.min(CAP, sum + w), 0) + 1;
}

// ---------------------------------------------------------------------------------------------
// Load-time checks

type ParsedExpr = ReturnType<typeof parse>;
type Expr = ParsedExpr["expr"];
type ExprKind = Expr["exprKind"];
type KindValue<C extends ExprKind["case"]> = Extract<ExprKind, { case: C }>["value"];

const VARIABLE_TYPES: ReadonlyMap<string, string> = new Map([
  ["predicate", "dyn"],
  ["predicateType", "string"],
  ["subject", "list"],
]);
const TYPE_NAMES = new Set([
  "int",
  "uint",
  "double",
  "bool",
  "string",
  "bytes",
  "list",
  "map",
  "null_type",
  "type",
]);
/** Calls the planner evaluates itself (not functions of the environment). */
const SPECIAL_FORMS = new Set(["_?_:_", "_[_]", "_&&_", "_||_", "@not_strictly_false"]);
const MACROS = new Set(["all", "exists", "exists_one", "existsOne", "map", "filter"]);
const STRINGS_EXTENSION = new Set([
  "charAt",
  "indexOf",
  "lastIndexOf",
  "lowerAscii",
  "upperAscii",
  "replace",
  "split",
  "substring",
  "trim",
  "join",
  "format",
  "quote",
]);
const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

const OVERLOADS = new Map<string, CelFunc[]>();
for (const f of STANDARD) OVERLOADS.set(f.name, [...(OVERLOADS.get(f.name) ?? []), f]);

class Checker {
  private readonly where: (id: bigint) => string;
  constructor(where: (id: bigint) => string) {
    this.where = where;
  }

  /** Why the expression is refused, or undefined. */
  check(root: Expr): string | undefined {
    const refusal = this.walk(root, 1, 0, new Map(VARIABLE_TYPES));
    if (refusal !== undefined) return refusal;
    const type = this.typeOf(root, new Map(VARIABLE_TYPES));
    return type === "bool" || type === "dyn"
      ? undefined
      : `yields ${type.split(" or ").map(friendly).join(" or ")}, not a bool`;
  }

  private at(e: Expr): string {
    const where = this.where(e.id);
    return where === "" ? "" : ` (${where})`;
  }

  private walk(
    e: Expr,
    depth: number,
    loops: number,
    scope: ReadonlyMap<string, string>,
  ): string | undefined {
    if (depth > CONDITION_LIMITS.expressionDepth) {
      return `nested more than ${CONDITION_LIMITS.expressionDepth} levels deep${this.at(e)}`;
    }
    const k = e.exprKind;
    const down = (child: Expr | undefined, inner = scope, innerLoops = loops) =>
      child === undefined ? undefined : this.walk(child, depth + 1, innerLoops, inner);
    switch (k.case) {
      case "constExpr": {
        const c = k.value.constantKind;
        if (c.case === "int64Value" && (c.value < INT64_MIN || c.value > INT64_MAX)) {
          return `integer ${c.value} does not fit 64 bits${this.at(e)}`;
        }
        if (c.case === "uint64Value" && c.value > UINT64_MAX) {
          return `unsigned integer ${c.value} does not fit 64 bits${this.at(e)}`;
        }
        return undefined;
      }
      case "identExpr": {
        const name = k.value.name;
        if (scope.has(name) || TYPE_NAMES.has(name)) return undefined;
        return `undeclared reference to '${printable(name)}'${this.at(e)}: the variables are predicate, predicateType and subject`;
      }
      case "selectExpr":
        return down(k.value.operand);
      case "callExpr":
        return (
          this.callProblem(e, k.value, scope) ?? firstOf([k.value.target, ...k.value.args], (x) => down(x))
        );
      case "listExpr":
        return firstOf(k.value.elements, (x) => down(x));
      case "structExpr":
        if (k.value.messageName !== "") {
          return `message construction (${printable(k.value.messageName)}{…}) is not supported${this.at(e)}`;
        }
        return firstOf(k.value.entries, (entry) =>
          entry.keyKind.case !== "mapKey"
            ? `a map key is missing${this.at(e)}`
            : (down(entry.keyKind.value) ?? down(entry.value)),
        );
      case "comprehensionExpr": {
        const c = k.value;
        if (loops + 1 > CONDITION_LIMITS.comprehensionNesting) {
          return `comprehensions (all, exists, exists_one, map, filter) nested more than ${CONDITION_LIMITS.comprehensionNesting} deep${this.at(e)}`;
        }
        const accuType = c.accuInit === undefined ? "dyn" : this.typeOf(c.accuInit, scope);
        const withAccu = new Map(scope).set(c.accuVar, accuType);
        const inLoop = new Map(withAccu).set(c.iterVar, "dyn");
        return (
          down(c.iterRange) ??
          down(c.accuInit) ??
          down(c.loopCondition, inLoop, loops + 1) ??
          down(c.loopStep, inLoop, loops + 1) ??
          down(c.result, withAccu)
        );
      }
      default:
        return `unsupported expression${this.at(e)}`;
    }
  }

  private callProblem(
    e: Expr,
    call: KindValue<"callExpr">,
    scope: ReadonlyMap<string, string>,
  ): string | undefined {
    const name = call.function;
    if (SPECIAL_FORMS.has(name)) return undefined;
    const isMethod = call.target !== undefined;
    const overloads = OVERLOADS.get(name);
    if (overloads === undefined) {
      if (name === "has") return `has() takes a field selection, as in has(predicate.a.b)${this.at(e)}`;
      if (MACROS.has(name) && isMethod) {
        return `${name}() takes a variable name and an expression, as in subject.${name}(s, …)${this.at(e)}`;
      }
      const hint = STRINGS_EXTENSION.has(name) ? " (CEL's strings extension is not enabled)" : "";
      return `unknown function '${printable(name)}'${hint}${this.at(e)}`;
    }
    if (
      !overloads.some((f) => (f.target !== undefined) === isMethod && f.arguments.length === call.args.length)
    ) {
      const shape = isMethod ? `.${name}()` : `${name}()`;
      return `no overload of ${shape} takes ${call.args.length} argument${call.args.length === 1 ? "" : "s"}${this.at(e)}`;
    }
    const types = this.argumentTypes(call, scope);
    if (this.candidates(call, types).length === 0 && [types.target, ...types.args].every(isConcrete)) {
      const shown = [...(types.target === undefined ? [] : [types.target]), ...types.args].map(friendly);
      return `no overload of '${name}' applies to (${shown.join(", ")})${this.at(e)}`;
    }
    return undefined;
  }

  /** The type name an expression certainly has ("bool", "list", "int or double", …), or "dyn". */
  private typeOf(e: Expr, scope: ReadonlyMap<string, string>): string {
    const k = e.exprKind;
    switch (k.case) {
      case "constExpr":
        return CONSTANT_TYPES[k.value.constantKind.case ?? ""] ?? "dyn";
      case "identExpr":
        return scope.get(k.value.name) ?? (TYPE_NAMES.has(k.value.name) ? "type" : "dyn");
      case "selectExpr":
        return k.value.testOnly ? "bool" : "dyn";
      case "listExpr":
        return "list";
      case "structExpr":
        return k.value.messageName === "" ? "map" : "dyn";
      case "comprehensionExpr": {
        const c = k.value;
        if (c.result === undefined || c.accuInit === undefined) return "dyn";
        return this.typeOf(c.result, new Map(scope).set(c.accuVar, this.typeOf(c.accuInit, scope)));
      }
      case "callExpr":
        return this.callType(k.value, scope);
      default:
        return "dyn";
    }
  }

  private callType(call: KindValue<"callExpr">, scope: ReadonlyMap<string, string>): string {
    const name = call.function;
    if (name === "_&&_" || name === "_||_" || name === "@not_strictly_false") return "bool";
    if (name === "_?_:_") {
      const [, t, f] = call.args;
      const a = t === undefined ? "dyn" : this.typeOf(t, scope);
      return f !== undefined && a === this.typeOf(f, scope) ? a : "dyn";
    }
    const results = [
      ...new Set(this.candidates(call, this.argumentTypes(call, scope)).map((f) => f.result.name)),
    ];
    if (results.length === 0 || results.includes("dyn") || results.includes("bool")) {
      return results.length === 1 ? (results[0] as string) : "dyn";
    }
    return results.sort().join(" or ");
  }

  private argumentTypes(call: KindValue<"callExpr">, scope: ReadonlyMap<string, string>) {
    return {
      target: call.target === undefined ? undefined : this.typeOf(call.target, scope),
      args: call.args.map((arg) => this.typeOf(arg, scope)),
    };
  }

  /** The standard overloads a call may resolve to, given what is known of its argument types. */
  private candidates(
    call: KindValue<"callExpr">,
    types: { target: string | undefined; args: string[] },
  ): CelFunc[] {
    const fits = (param: string, actual: string) =>
      param === "dyn" || !isConcrete(actual) || param === actual;
    return (OVERLOADS.get(call.function) ?? []).filter(
      (f) =>
        (f.target !== undefined) === (call.target !== undefined) &&
        f.arguments.length === call.args.length &&
        (f.target === undefined || types.target === undefined || fits(f.target.name, types.target)) &&
        f.arguments.every((p, i) => fits(p.name, types.args[i] as string)),
    );
  }
}

/** A single known type (not dyn, not "int or double"). */
const isConcrete = (type: string | undefined): boolean =>
  type === undefined || (type !== "dyn" && !type.includes(" or "));

const CONSTANT_TYPES: Readonly<Record<string, string>> = {
  boolValue: "bool",
  int64Value: "int",
  uint64Value: "uint",
  doubleValue: "double",
  stringValue: "string",
  bytesValue: "bytes",
  nullValue: "null_type",
};

function firstOf<T>(
  items: readonly (T | undefined)[],
  f: (item: T) => string | undefined,
): string | undefined {
  for (const item of items) {
    if (item === undefined) continue;
    const found = f(item);
    if (found !== undefined) return found;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// The rewrite that makes the program charge for itself

function children(e: Expr): Expr[] {
  const k = e.exprKind;
  switch (k.case) {
    case "selectExpr":
      return k.value.operand === undefined ? [] : [k.value.operand];
    case "callExpr":
      return k.value.target === undefined ? [...k.value.args] : [k.value.target, ...k.value.args];
    case "listExpr":
      return [...k.value.elements];
    case "structExpr":
      return k.value.entries.flatMap((entry) => [
        ...(entry.keyKind.case === "mapKey" ? [entry.keyKind.value] : []),
        ...(entry.value === undefined ? [] : [entry.value]),
      ]);
    case "comprehensionExpr": {
      const c = k.value;
      return [c.iterRange, c.accuInit, c.loopCondition, c.loopStep, c.result].filter(
        (x): x is Expr => x !== undefined,
      );
    }
    default:
      return [];
  }
}

function countNodes(e: Expr | undefined): number {
  if (e === undefined) return 0;
  let n = 1;
  for (const child of children(e)) n += countNodes(child);
  return n;
}

function maxId(e: Expr): bigint {
  let max = e.id;
  for (const child of children(e)) {
    const m = maxId(child);
    if (m > max) max = m;
  }
  return max;
}

function callExpr(id: bigint, name: string, args: Expr[]): Expr {
  return {
    $typeName: "cel.expr.Expr",
    id,
    exprKind: { case: "callExpr", value: { $typeName: "cel.expr.Expr.Call", function: name, args } },
  } as Expr;
}

function intExpr(id: bigint, value: number): Expr {
  return {
    $typeName: "cel.expr.Expr",
    id,
    exprKind: {
      case: "constExpr",
      value: { $typeName: "cel.expr.Constant", constantKind: { case: "int64Value", value: BigInt(value) } },
    },
  } as Expr;
}

const withKind = (e: Expr, exprKind: ExprKind): Expr => ({ ...e, exprKind });

/**
 * The tree with the charges of the file comment built in (ids kept; a new node gets a fresh id at the
 * position of the node it stands for).
 */
function instrument(e: Expr, fresh: (like: Expr) => bigint): Expr {
  const k = e.exprKind;
  const again = (x: Expr) => instrument(x, fresh);
  switch (k.case) {
    case "selectExpr":
      return withKind(e, {
        case: "selectExpr",
        value: { ...k.value, operand: k.value.operand === undefined ? undefined : again(k.value.operand) },
      });
    case "callExpr": {
      const args = k.value.args.map(again);
      const target = k.value.target === undefined ? undefined : again(k.value.target);
      const [operand, key] = args;
      if (k.value.function === "_[_]" && target === undefined && operand !== undefined && key !== undefined) {
        args[0] = callExpr(fresh(e), INDEXING, [operand, key]);
      }
      return withKind(e, { case: "callExpr", value: { ...k.value, target, args } });
    }
    case "listExpr":
      return withKind(e, { case: "listExpr", value: { ...k.value, elements: k.value.elements.map(again) } });
    case "structExpr":
      return withKind(e, {
        case: "structExpr",
        value: {
          ...k.value,
          entries: k.value.entries.map((entry) => ({
            ...entry,
            keyKind:
              entry.keyKind.case === "mapKey"
                ? { case: "mapKey", value: again(entry.keyKind.value) }
                : entry.keyKind,
            value: entry.value === undefined ? undefined : again(entry.value),
          })),
        },
      });
    case "comprehensionExpr": {
      const c = k.value;
      if (
        c.iterRange === undefined ||
        c.accuInit === undefined ||
        c.loopCondition === undefined ||
        c.loopStep === undefined ||
        c.result === undefined
      ) {
        return e; // the planner refuses it
      }
      const body = countNodes(c.loopCondition) + countNodes(c.loopStep);
      let step = again(c.loopStep);
      if (c.accuInit.exprKind.case === "listExpr" && c.accuInit.exprKind.value.elements.length === 0) {
        step = appendInPlace(step, c.accuVar);
      }
      return withKind(e, {
        case: "comprehensionExpr",
        value: {
          ...c,
          iterRange: callExpr(fresh(c.iterRange), RANGE, [again(c.iterRange)]),
          accuInit: again(c.accuInit),
          loopCondition: callExpr(fresh(e), TICK, [again(c.loopCondition), intExpr(fresh(e), body)]),
          loopStep: step,
          result: again(c.result),
        },
      });
    }
    default:
      return e;
  }
}

/** map/filter's step `accu + [x]` (possibly under `cond ? … : accu`) → APPEND(accu, x). */
function appendInPlace(step: Expr, accuVar: string): Expr {
  const k = step.exprKind;
  if (k.case !== "callExpr" || k.value.target !== undefined) return step;
  const [first, second, third] = k.value.args;
  if (k.value.function === "_?_:_" && first !== undefined && second !== undefined && third !== undefined) {
    const args = [first, appendInPlace(second, accuVar), appendInPlace(third, accuVar)];
    return withKind(step, { case: "callExpr", value: { ...k.value, args } });
  }
  if (
    k.value.function === "_+_" &&
    first?.exprKind.case === "identExpr" &&
    first.exprKind.value.name === accuVar &&
    second?.exprKind.case === "listExpr" &&
    second.exprKind.value.elements.length === 1
  ) {
    return callExpr(step.id, APPEND, [first, second.exprKind.value.elements[0] as Expr]);
  }
  return step;
}

// ---------------------------------------------------------------------------------------------
// The statement as CEL input

type JsonValue = null | boolean | number | bigint | string | JsonValue[] | Map<string, JsonValue>;

class InputTooBig extends Error {}

/** The bindings, or why the statement cannot be evaluated. */
function toBindings(statement: ConditionStatement): Bindings | string {
  try {
    if (typeof statement !== "object" || statement === null) return "the statement is not an object";
    const { predicateType, predicate, subject } = statement;
    if (typeof predicateType !== "string") return "the statement's predicateType is not a string";
    if (predicateType.length > CONDITION_LIMITS.stringLength) return "predicateType too long";
    if (!Array.isArray(subject)) return "the statement's subject is not a list";
    const budget = { values: 0 };
    // in-toto: an unset predicate "is treated the same as set-but-empty".
    const converted = predicate === undefined ? new Map() : toJson(predicate, 1, budget, "predicate");
    const subjects = toJson(subject, 1, budget, "subject") as JsonValue[];
    // No prototype: the library reads variables as `bindings[name]`.
    return Object.assign(Object.create(null) as Bindings, {
      predicate: converted,
      predicateType,
      subject: subjects,
    });
  } catch (e) {
    return e instanceof InputTooBig ? e.message : "the statement is not JSON";
  }
}

function toJson(v: unknown, depth: number, budget: { values: number }, part: string): JsonValue {
  if (++budget.values > CONDITION_LIMITS.inputValues) {
    throw new InputTooBig(`${part} too large: more than ${CONDITION_LIMITS.inputValues} values`);
  }
  if (depth > CONDITION_LIMITS.inputDepth) {
    throw new InputTooBig(`${part} too deep: more than ${CONDITION_LIMITS.inputDepth} levels`);
  }
  switch (typeof v) {
    case "boolean":
    case "number":
      return v;
    case "string":
      if (v.length > CONDITION_LIMITS.stringLength) {
        throw new InputTooBig(`${part} has a string longer than ${CONDITION_LIMITS.stringLength} characters`);
      }
      return v;
    case "bigint":
      if (v < INT64_MIN || v > INT64_MAX) throw new InputTooBig(`${part} has an integer beyond 64 bits`);
      return v;
    case "object": {
      if (v === null) return null;
      if (Array.isArray(v)) {
        const list: JsonValue[] = [];
        for (let i = 0; i < v.length; i++) list.push(toJson(v[i], depth + 1, budget, part)); // holes too
        return list;
      }
      const proto = Object.getPrototypeOf(v);
      if (proto !== Object.prototype && proto !== null) throw new InputTooBig(`${part} is not JSON`);
      const map = new Map<string, JsonValue>();
      for (const key of Object.keys(v)) {
        if (key.length > CONDITION_LIMITS.stringLength) {
          throw new InputTooBig(`${part} has a key longer than ${CONDITION_LIMITS.stringLength} characters`);
        }
        map.set(key, toJson((v as Record<string, unknown>)[key], depth + 1, budget, part));
      }
      return map;
    }
    default:
      throw new InputTooBig(`${part} is not JSON (${typeof v})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Words

function syntaxProblem(e: unknown): string {
  if (e instanceof RangeError) return "nested too deeply to parse";
  const located = e as { rawMessage?: unknown; location?: { start?: { line?: unknown; column?: unknown } } };
  const line = located.location?.start?.line;
  const column = located.location?.start?.column;
  if (typeof located.rawMessage === "string" && typeof line === "number" && typeof column === "number") {
    return `Syntax error: ${printable(located.rawMessage)} (line ${line}, column ${column})`;
  }
  return `Syntax error: ${printable(messageOf(e))}`;
}

/** "line L, column C" of a source offset (or "" without one). */
function locate(source: string, offset: number | undefined): string {
  if (offset === undefined || offset < 0 || offset > source.length) return "";
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset; i++) {
    if (source[i] === "\n") {
      line++;
      lineStart = i + 1;
    }
  }
  return `line ${line}, column ${offset - lineStart + 1}`;
}

function describeError(message: string): string {
  if (/Maximum call stack/.test(message)) return "nested too deeply to evaluate";
  const field = /^field not found: ([\s\S]*)$/.exec(message);
  if (field !== null) return `no such key: ${printable(field[1] as string, 80)}`;
  const index = /^index (\S+) out of bounds/.exec(message);
  if (index !== null) return `index ${printable(index[1] as string, 40)} out of bounds`;
  return printable(message);
}

function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** Untrusted text for a message: control characters replaced, bounded. */
function printable(text: string, max = 160): string {
  let out = "";
  for (const ch of text) {
    if (out.length >= max) return `${out}…`;
    const code = ch.codePointAt(0) as number;
    out += code < 0x20 || (code >= 0x7f && code < 0xa0) || code === 0x2028 || code === 0x2029 ? "�" : ch;
  }
  return out;
}

function friendly(type: string): string {
  if (type === "google.protobuf.Timestamp") return "timestamp";
  if (type === "google.protobuf.Duration") return "duration";
  if (type === "null_type") return "null";
  return type;
}

function typeNameOf(v: unknown): string {
  try {
    return friendly(celType(v as CelValue).name);
  } catch {
    return typeof v;
  }
}

function utf8Length(s: string): number {
  let n = 0;
  for (const ch of s) {
    const code = ch.codePointAt(0) as number;
    n += code < 0x80 ? 1 : code < 0x800 ? 2 : code < 0x10000 ? 3 : 4;
  }
  return n;
}
