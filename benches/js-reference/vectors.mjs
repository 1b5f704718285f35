// Writes the answers of the libraries upstream uses, for the Rust tests to agree with
// (`shared/tests/vectors/`): with the pinned taskcluster-lib-scopes, satisfaction and the
// normal form for generated scope sets and expressions; with the pinned cron-parser, the
// next 5 fires after several reference times of hand-picked and generated patterns (or
// that it refuses them).
//
//   (cd benches/js-reference && npm ci) && node benches/js-reference/vectors.mjs
//
// Deterministic: a seeded generator, so a re-run writes the same files.

import { writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { CronExpressionParser } from "cron-parser";

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

// --- schedules -----------------------------------------------------------------------------

const cronVersion = require("cron-parser/package.json").version;
const HAND_PICKED = [
  "0 0 12 L * *", "0 0 12 * * 5#2", "0 0 0 * * 5L", "0 30 9 * * 1-5", "0 0 0 29 2 *", "0 0 0 31 * *",
  "0 0 0 1,15 * 1", "0 0 0 13 * 5", "*/15 * * * *", "0 */2 * * *", "0 0 1 1 *", "0 0 * * 0", "0 0 * * 7",
  "0 0 0 * * SUN", "0 0 0 * JAN-MAR MON-FRI", "0 0 0 ? * MON", "0 0 0 1 * ?", "@yearly", "@annually",
  "@monthly", "@weekly", "@daily", "@hourly", "@minutely", "@secondly", "@weekdays", "@weekends",
  "0 0 12 LW * *", "0 0 12 15W * *", "0 0 12 H * *", "H H * * *", "", "* * *", "0 0 0 30 2 *",
  "59 59 23 31 12 *", "0 0 0 L 2 *", "0 0 0 * * 0#5", "0 0 0 * * 1#1,5#3", "0 0 0 L-3 * *", "5-10/2 * * * * *",
  "0 0 0 1-7 * 1", "0 0 0 * * 1,3,5", "0 0-23/6 * * *", "0 0 0 * 2 *", "0 0 0 25 12 *", "0 0 3 1 1 *",
];
const FIELDS = [
  ["0", "*/15", "5", "0,30", "10-20", "*"],
  ["0", "*/5", "30", "0-29/10", "15,45", "*"],
  ["*", "0", "12", "*/6", "9-17", "23"],
  ["*", "1", "15", "L", "1-7", "29", "31", "?", "10-20/5"],
  ["*", "1", "2", "*/3", "JAN,JUL", "6-8", "12"],
  ["*", "0", "1-5", "MON", "6", "7", "5#2", "1L", "?", "SAT,SUN"],
];
const generated = Array.from({ length: 300 }, () => FIELDS.map(pick).join(" "));
const REFERENCE = ["2026-01-01T00:00:00Z", "2026-02-27T23:59:30Z", "2028-02-28T12:00:00Z", "2026-12-31T23:45:10Z"];
const schedules = [];
for (const pattern of [...new Set([...HAND_PICKED, ...generated])]) {
  // `H` is a random value per parse unless a seed is given: no vector to agree with.
  if (/(^|[\s,\/-])H/.test(pattern)) {
    schedules.push({ pattern, hashed: true });
    continue;
  }
  const from = {};
  let refused = null;
  for (const at of REFERENCE) {
    try {
      const it = CronExpressionParser.parse(pattern, { currentDate: at, tz: "UTC" });
      from[at] = Array.from({ length: 5 }, () => it.next().toISOString());
    } catch (e) {
      refused = String(e.message || e);
      break;
    }
  }
  const entry = refused === null ? { pattern, next: from } : { pattern, refused };
  // A difference taskhooks keeps on purpose, with the reason (the Rust test skips its fires).
  const fields = pattern.trim().split(/\s+/);
  const [dom, dow] = fields.length === 6 ? [fields[3], fields[5]] : [fields[2], fields[4]];
  if (refused === null && dom !== undefined && dom !== "*" && dom !== "?" && dow.includes("#")) {
    entry.deliberate = "cron-parser keeps only the days of month that fall in the week of `n#k` (`0 0 0 15 * 5#2` never fires on the 15th, `10` in `10-20/5` does); taskhooks applies the rule of every other pattern with both day fields restricted: the day of month, or the k-th weekday";
  }
  schedules.push(entry);
}
const cronOut = new URL("../../shared/tests/vectors/schedules.json", import.meta.url);
writeFileSync(cronOut, JSON.stringify({ library: `cron-parser ${cronVersion}`, reference: REFERENCE, schedules }, null, 0) + "\n");
console.log(`wrote ${schedules.length} schedules (${schedules.filter((c) => c.refused).length} refused) to ${cronOut.pathname}`);
