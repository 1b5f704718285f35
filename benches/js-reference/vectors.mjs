// Writes the answers of the libraries upstream uses, for the Rust tests to agree with
// (`shared/tests/vectors/`): with the pinned taskcluster-lib-scopes, satisfaction and the
// normal form for generated scope sets and expressions.
//
//   (cd benches/js-reference && npm ci) && node benches/js-reference/vectors.mjs
//
// Deterministic: a seeded generator, so a re-run writes the same files.

import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const scopes = require("taskcluster-lib-scopes");
const version = require("taskcluster-lib-scopes/package.json").version;

// mulberry32: small, seeded, good enough to spread cases.
function rng(seed) {
  return () => {
    seed |= 0;
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(20261202);
const pick = (xs) => xs[Math.floor(random() * xs.length)];

// Scopes from a small alphabet, so that sets overlap, stars cover, and prefixes collide:
// `a:b*` and `a:bc`, `a*` and `ab`, a bare `*`, the empty scope, spaces.
const PARTS = ["a", "b", "ab", "c", "queue", "create-task", "x y", ""];
function scope() {
  const n = 1 + Math.floor(random() * 3);
  let s = Array.from({ length: n }, () => pick(PARTS)).join(pick([":", ":", "/", ""]));
  const r = random();
  if (r < 0.25) s += "*";
  else if (r < 0.3) s = "*";
  else if (r < 0.33) s = "";
  return s;
}
const scopeSet = () => Array.from({ length: Math.floor(random() * 6) }, scope);

function expression(depth) {
  if (depth === 0 || random() < 0.35) return scope();
  const n = Math.floor(random() * 4);
  const items = Array.from({ length: n }, () => expression(depth - 1));
  return random() < 0.5 ? { AllOf: items } : { AnyOf: items };
}

const cases = [];
for (let i = 0; i < 1200; i++) {
  const given = scopeSet();
  const expr = expression(3);
  const sorted = [...given].sort(scopes.scopeCompare);
  cases.push({
    scopes: given,
    expression: expr,
    satisfied: scopes.satisfiesExpression(given, expr),
    normalized: scopes.normalizeScopeSet(sorted),
  });
}
const out = new URL("../../shared/tests/vectors/scopes.json", import.meta.url);
writeFileSync(out, JSON.stringify({ library: `taskcluster-lib-scopes ${version}`, cases }, null, 0) + "\n");
console.log(`wrote ${cases.length} scope cases (${cases.filter((c) => c.satisfied).length} satisfied) to ${out.pathname}`);
