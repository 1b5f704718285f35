// Runs the inputs of shared/benches/inputs.json through the JavaScript libraries upstream
// Taskcluster uses (json-e, taskcluster-lib-scopes, cron-parser), reads the Rust figures
// that `cargo bench -p taskhooks-shared --bench core` left in criterion's output, and
// prints both with their ratio. Usage: node compare.mjs <cargo target dir>
import fs from 'node:fs';
import path from 'node:path';
import jsone from 'json-e';
import scopes from 'taskcluster-lib-scopes';
import { CronExpressionParser } from 'cron-parser';

const here = path.dirname(new URL(import.meta.url).pathname);
const inputs = JSON.parse(fs.readFileSync(path.join(here, '../../shared/benches/inputs.json'), 'utf8'));
const targetDir = process.argv[2] || path.join(here, '../../target');

// Mean time per call in nanoseconds, after a warm-up, over about `seconds`.
function measure(fn, seconds = 2) {
  for (let i = 0; i < 200; i++) fn();
  let n = 0;
  const start = process.hrtime.bigint();
  const end = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < end) {
    for (let i = 0; i < 50; i++) fn();
    n += 50;
    now = process.hrtime.bigint();
  }
  return Number(now - start) / n;
}

// Role expansion: lib-scopes has none (the Auth service does it), so this is the same
// fixed-point algorithm as shared/src/scopes.rs, on lib-scopes' primitives.
function expand(clientScopes, roles) {
  const satisfies = (g, r) => g === r || (g.endsWith('*') && r.startsWith(g.slice(0, -1)));
  let set = [...clientScopes];
  const queue = [...clientScopes];
  const done = new Set();
  while (queue.length) {
    const scope = queue.pop();
    if (!(scope.startsWith('assume:') || (scope.endsWith('*') && 'assume:'.startsWith(scope.slice(0, -1))))) continue;
    if (done.has(scope)) continue;
    done.add(scope);
    for (const role of roles) {
      const assume = `assume:${role.roleId}`;
      const star = role.roleId.endsWith('*');
      if (!(satisfies(scope, assume) || (star && satisfies(assume, scope)))) continue;
      let granted = role.scopes;
      if (star) {
        const prefix = 'assume:' + role.roleId.slice(0, -1);
        const param = scope.startsWith(prefix) ? scope.slice(prefix.length) : '*';
        granted = role.scopes.map(s => {
          const at = s.indexOf('<..>');
          if (at < 0) return s;
          return param.endsWith('*') ? s.slice(0, at) + param : s.replaceAll('<..>', param);
        });
      }
      for (const g of granted) {
        if (!scopes.satisfiesExpression(set, g)) {
          set.push(g);
          queue.push(g);
        }
      }
    }
  }
  return scopes.normalizeScopeSet(set);
}

function rustMean(id) {
  // criterion keeps a benchmark named `a/b` in the folder `a_b`.
  const file = path.join(targetDir, 'criterion', id.replaceAll('/', '_'), 'new', 'estimates.json');
  if (!fs.existsSync(file)) return null;
  return JSON.parse(fs.readFileSync(file, 'utf8')).mean.point_estimate;
}

const r = inputs.render;
const s = inputs.scopes;
const sc = inputs.schedule;
const expanded = expand(s.clientScopes, s.roles);
if (!scopes.satisfiesExpression(expanded, s.expression)) throw new Error('JS expansion does not satisfy the expression');
const from = new Date(sc.from);

const cases = [
  ['render/decision_task', 'json-e render; Rust: the service\'s render_task, defaults included',
    () => jsone(r.template, { firedBy: r.firedBy, payload: r.payload, taskId: r.taskId, now: r.now })],
  ['render/json_e_render', 'json-e render; Rust: json_e::render',
    () => jsone(r.template, { firedBy: r.firedBy, payload: r.payload, taskId: r.taskId, now: r.now })],
  ['render/json_e_template_parsed_once', 'json-e render; Rust: json_e::Template parsed once, rendered',
    () => jsone(r.template, { firedBy: r.firedBy, payload: r.payload, taskId: r.taskId, now: r.now })],
  ['scopes/expand_and_satisfy', 'role expansion (same algorithm) + lib-scopes satisfiesExpression',
    () => scopes.satisfiesExpression(expand(s.clientScopes, s.roles), s.expression)],
  ['scopes/satisfy_expanded', 'lib-scopes satisfiesExpression',
    () => scopes.satisfiesExpression(expanded, s.expression)],
  ['schedule/next_fire_3_patterns', 'cron-parser next() over 3 patterns',
    () => Math.min(...sc.patterns.map(p => CronExpressionParser.parse(p, { currentDate: from, tz: 'UTC' }).next().getTime()))],
];

const fmt = ns => ns >= 1e6 ? `${(ns / 1e6).toFixed(2)} ms` : ns >= 1e3 ? `${(ns / 1e3).toFixed(1)} µs` : `${ns.toFixed(0)} ns`;
console.log(`| benchmark | JavaScript (${process.version}) | Rust (native) | Rust faster by |`);
console.log('| --- | --- | --- | --- |');
for (const [id, what, fn] of cases) {
  const js = measure(fn);
  const rust = rustMean(id);
  const ratio = rust ? `${(js / rust).toFixed(1)}×` : 'run cargo bench first';
  console.log(`| ${id} (${what}) | ${fmt(js)} | ${rust ? fmt(rust) : '-'} | ${ratio} |`);
}
