// API conformance through the official Taskcluster JavaScript client (the npm package
// pinned in package-lock.json): every Hooks v1 method and the Auth subset taskhooks
// serves, against a running host. Run by tests/python/test_js_client.py, or by hand:
//
//   TASKCLUSTER_ROOT_URL=http://127.0.0.1:PORT TASKCLUSTER_CLIENT_ID=static/taskhooks/root \
//   TASKCLUSTER_ACCESS_TOKEN=... node tests/js/conformance.mjs
//
// Prints one line per method checked and exits non-zero on any failure, including a
// Hooks method of the client's reference (or one of the Auth subset) that no check
// called, so a method the client gains cannot be skipped silently.

import assert from 'node:assert/strict';
import taskcluster from 'taskcluster-client';

const rootUrl = process.env.TASKCLUSTER_ROOT_URL;
const rootCredentials = {
  clientId: process.env.TASKCLUSTER_CLIENT_ID,
  accessToken: process.env.TASKCLUSTER_ACCESS_TOKEN,
};
if (!rootUrl || !rootCredentials.clientId || !rootCredentials.accessToken) {
  console.error('set TASKCLUSTER_ROOT_URL, TASKCLUSTER_CLIENT_ID and TASKCLUSTER_ACCESS_TOKEN');
  process.exit(2);
}

// The Auth methods taskhooks serves (the `auth` rows of shared/src/api/endpoints.rs).
const AUTH_SUBSET = [
  'ping', 'listClients', 'client', 'createClient', 'deleteClient', 'resetAccessToken',
  'listRoles', 'role', 'createRole', 'updateRole', 'deleteRole', 'currentScopes',
  'expandScopes', 'getEntityHistory', 'listAuditHistory',
];

// The API methods a client class has, read from the reference the client carries: each
// generated method holds its reference entry as `entryReference`.
function referenceMethods(Client) {
  return Object.getOwnPropertyNames(Client.prototype)
    .filter(name => typeof Client.prototype[name] === 'function' && Client.prototype[name].entryReference?.type === 'function');
}

// Every API call made through a tracked client is recorded as `Service.method`.
const called = new Set();
function track(client, service) {
  return new Proxy(client, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver);
      if (typeof value === 'function' && value.entryReference) {
        return (...args) => {
          called.add(`${service}.${String(prop)}`);
          return value.apply(target, args);
        };
      }
      return value;
    },
  });
}

// No retries: a 5xx is a failure to see, not to wait out.
const options = (credentials, extra = {}) => ({ rootUrl, credentials, retries: 0, ...extra });
const hooksAs = (credentials, extra) => track(new taskcluster.Hooks(options(credentials, extra)), 'Hooks');
const authAs = (credentials, extra) => track(new taskcluster.Auth(options(credentials, extra)), 'Auth');
const hooks = hooksAs(rootCredentials);
const auth = authAs(rootCredentials);
// `credentials: {}` is the client's way to call without credentials.
const anonHooks = hooksAs({});
const anonAuth = authAs({});
const queue = new taskcluster.Queue(options(rootCredentials));

/** Awaits a call that must fail with this status (and error code); answers the error. */
async function rejects(call, status, code) {
  let err;
  try {
    await call();
  } catch (e) {
    err = e;
  }
  assert.ok(err, `expected a ${status} ${code ?? ''}, but the call succeeded`);
  assert.equal(err.statusCode, status, `expected ${status} ${code ?? ''}, got ${err.statusCode}: ${err.message}`);
  if (code) {
    assert.equal(err.code, code, `expected code ${code}: ${JSON.stringify(err.body)}`);
    for (const key of ['code', 'message', 'requestInfo']) {
      assert.ok(key in err.body, `error body has no ${key}: ${JSON.stringify(err.body)}`);
    }
  }
  return err;
}

// Names of this run's own, so a second run against the same host starts clean.
const RUN = taskcluster.slugid().slice(0, 8).replace(/^[-_]/, 'r');
const G = `js-${RUN}`;
const C = `js-${RUN}/`;
const ADMIN = `js-admin-${RUN}`;
const H = 'nightly/build';
const ROLE_SCOPES = [`queue:create-task:highest:${G}/*`, 'queue:create-task:project:none', 'queue:scheduler-id:-'];

function hookBody(name = 'nightly') {
  return {
    metadata: { name, description: 'js conformance', owner: 'ops@example.com', emailOnError: false },
    schedule: ['0 0 3 * * *'],
    task: {
      $if: "firedBy != 'triggerHook' || payload.go",
      then: {
        taskQueueId: `${G}/ci`,
        schedulerId: '-',
        payload: { fired: '${firedBy}' },
        metadata: { name, description: '', owner: 'ops@example.com', source: 'https://example.com' },
        deadline: { $fromNow: '2 hours' },
      },
    },
    triggerSchema: {
      type: 'object',
      properties: { go: { type: 'boolean' }, taskId: { type: 'string' } },
      additionalProperties: false,
    },
  };
}

/** A client made with createClient, and a tracked Hooks and Auth client acting as it. */
async function clientWith(clientId, scopes) {
  const expires = taskcluster.fromNow('1 day');
  const created = await auth.createClient(clientId, { description: `js conformance ${clientId}`, expires, scopes });
  assert.equal(created.clientId, clientId);
  assert.equal(typeof created.accessToken, 'string');
  assert.ok(created.accessToken.length >= 22, created.accessToken);
  const credentials = { clientId, accessToken: created.accessToken };
  return { created, expires, credentials, hooks: hooksAs(credentials), auth: authAs(credentials) };
}

// Each check names the method it is about; later checks build on earlier ones.
const checks = [];
const check = (name, fn) => checks.push({ name, fn });
const state = {};

check('Hooks.ping', async () => {
  const pong = await anonHooks.ping();
  assert.equal(pong.alive, true);
  assert.equal(typeof pong.uptime, 'number');
});

check('Hooks.lbheartbeat', async () => {
  assert.deepEqual(await anonHooks.lbheartbeat(), {});
});

check('Hooks.version', async () => {
  const version = await anonHooks.version();
  assert.equal(typeof version.version, 'string');
});

check('Hooks.heartbeat', async () => {
  assert.deepEqual(await anonHooks.heartbeat(), {});
});

check('Auth.ping', async () => {
  assert.equal((await anonAuth.ping()).alive, true);
});

check('Auth.createRole', async () => {
  const role = await auth.createRole(`hook-id:${G}/*`, { description: 'js proj hooks', scopes: ROLE_SCOPES });
  assert.equal(role.roleId, `hook-id:${G}/*`);
  assert.equal(role.description, 'js proj hooks');
  assert.deepEqual([...role.scopes].sort(), [...ROLE_SCOPES].sort());
  // Idempotent is not upstream's rule: a second create of the same role is a conflict.
  await rejects(() => auth.createRole(`hook-id:${G}/*`, { description: 'other', scopes: [] }), 409, 'RequestConflict');
});

check('Hooks.createHook', async () => {
  const body = hookBody();
  const created = await hooks.createHook(G, H, body);
  assert.equal(created.hookGroupId, G);
  assert.equal(created.hookId, H);
  assert.deepEqual(created.metadata, body.metadata);
  assert.deepEqual(created.schedule, body.schedule);
  assert.deepEqual(created.task, body.task);
  assert.deepEqual(created.triggerSchema, body.triggerSchema);
  assert.ok(!('triggerToken' in created) && !('nextTaskId' in created), JSON.stringify(created));
  state.definition = created;
  // Re-creating the same hook succeeds; a different one conflicts.
  assert.deepEqual(await hooks.createHook(G, H, body), created);
  await rejects(() => hooks.createHook(G, H, hookBody('other')), 409, 'RequestConflict');
  // emailOnError defaults to true.
  const second = hookBody('second');
  delete second.metadata.emailOnError;
  assert.equal((await hooks.createHook(G, 'second', second)).metadata.emailOnError, true);
  // A bad schedule, a bad trigger schema, a bad owner, a bad id.
  const badSchedule = { ...hookBody(), schedule: ['0 0 3 0 * *'] };
  const err = await rejects(() => hooks.createHook(G, 'bad-schedule', badSchedule), 400, 'InputError');
  assert.match(err.message, /0 0 3 0 \* \*/);
  await rejects(() => hooks.createHook(G, 'bad-schema', { ...hookBody(), triggerSchema: { type: 'beer' } }), 400, 'InputError');
  const badOwner = hookBody();
  badOwner.metadata.owner = 'not an email';
  await rejects(() => hooks.createHook(G, 'bad-owner', badOwner), 400, 'InputValidationError');
  await rejects(() => hooks.createHook('bad id', 'x', hookBody()), 400, 'InvalidRequestArguments');
});

check('Hooks.hook', async () => {
  assert.deepEqual(await hooks.hook(G, H), state.definition);
  await rejects(() => hooks.hook(G, 'absent'), 404, 'ResourceNotFound');
});

check('Hooks.listHookGroups', async () => {
  const { groups } = await hooks.listHookGroups();
  assert.ok(groups.includes(G), JSON.stringify(groups));
});

check('Hooks.listHooks', async () => {
  const { hooks: listed } = await hooks.listHooks(G);
  assert.deepEqual(listed.map(h => h.hookId), [H, 'second']);
  assert.deepEqual(listed[0], state.definition);
  await rejects(() => hooks.listHooks('no-such-group'), 404, 'ResourceNotFound');
});

check('Hooks.getHookStatus', async () => {
  const status = await hooks.getHookStatus(G, 'second');
  assert.deepEqual(status.lastFire, { result: 'no-fire' });
  assert.match(status.nextScheduledDate, /T03:00:00\.000Z$/);
  await rejects(() => hooks.getHookStatus(G, 'absent'), 404, 'ResourceNotFound');
});

check('Hooks.updateHook', async () => {
  const update = hookBody('second, renamed');
  delete update.schedule;
  const updated = await hooks.updateHook(G, 'second', update);
  assert.equal(updated.metadata.name, 'second, renamed');
  assert.deepEqual(updated.schedule, []);
  assert.deepEqual(await hooks.hook(G, 'second'), updated);
  assert.ok(!('nextScheduledDate' in await hooks.getHookStatus(G, 'second')));
  await rejects(() => hooks.updateHook(G, 'absent', hookBody()), 404, 'ResourceNotFound');
});

check('Hooks.triggerHook', async () => {
  assert.deepEqual(await hooks.triggerHook(G, H, { go: false }), {}, 'a declined fire answers {}');
  state.fired = [];
  for (let i = 0; i < 3; i++) {
    const fired = await hooks.triggerHook(G, H, { go: true });
    assert.equal(fired.status.taskId, fired.taskId);
    state.fired.push(fired.taskId);
  }
  const chosen = taskcluster.slugid();
  assert.equal((await hooks.triggerHook(G, H, { go: true, taskId: chosen })).taskId, chosen);
  state.fired.push(chosen);
  const task = await queue.task(chosen);
  assert.deepEqual(task.payload, { fired: 'triggerHook' });
  assert.equal(task.taskQueueId, `${G}/ci`);
  await rejects(() => hooks.triggerHook(G, H, { go: 'yes' }), 400, 'InputError');
  await rejects(() => hooks.triggerHook(G, H, { go: true, taskId: 'not-a-slug' }), 400, 'InputError');
  await rejects(() => hooks.triggerHook(G, 'absent', {}), 404, 'ResourceNotFound');
});

check('Hooks.listLastFires', async () => {
  const seen = [];
  let query = { limit: '3' };
  let pages = 0;
  for (;;) {
    const page = await hooks.listLastFires(G, H, query);
    pages++;
    for (const fire of page.lastFires) {
      assert.equal(fire.hookGroupId, G);
      assert.equal(fire.hookId, H);
      assert.equal(fire.firedBy, 'triggerHook');
      assert.equal(fire.result, 'success');
      seen.push(fire.taskId);
    }
    if (!page.continuationToken) {
      break;
    }
    query = { limit: '3', continuationToken: page.continuationToken };
  }
  assert.ok(pages >= 2, 'four fires at three a page take two pages');
  assert.deepEqual(seen.slice(0, state.fired.length), [...state.fired].reverse(), 'newest first');
  assert.equal((await hooks.getHookStatus(G, H)).lastFire.result, 'success');
  await rejects(() => hooks.listLastFires(G, 'never-fired'), 404, 'ResourceNotFound');
});

check('Hooks.getTriggerToken', async () => {
  const { token } = await hooks.getTriggerToken(G, H);
  assert.equal(typeof token, 'string');
  assert.ok(token.length > 0);
  assert.equal((await hooks.getTriggerToken(G, H)).token, token, 'the token is stable until reset');
  state.token = token;
});

check('Hooks.triggerHookWithToken', async () => {
  const fired = await anonHooks.triggerHookWithToken(G, H, state.token, { go: true });
  assert.equal(typeof fired.taskId, 'string');
  assert.deepEqual((await queue.task(fired.taskId)).payload, { fired: 'triggerHookWithToken' });
  await rejects(() => anonHooks.triggerHookWithToken(G, H, 'not-the-token', { go: true }), 401, 'AuthenticationFailed');
  await rejects(() => anonHooks.triggerHookWithToken(G, 'absent', state.token, {}), 404, 'ResourceNotFound');
});

check('Hooks.resetTriggerToken', async () => {
  const { token } = await hooks.resetTriggerToken(G, H);
  assert.notEqual(token, state.token);
  assert.equal((await hooks.getTriggerToken(G, H)).token, token);
  await rejects(() => anonHooks.triggerHookWithToken(G, H, state.token, { go: true }), 401, 'AuthenticationFailed');
  assert.ok((await anonHooks.triggerHookWithToken(G, H, token, { go: true })).taskId);
});

check('Hooks.removeHook', async () => {
  assert.deepEqual(await hooks.removeHook(G, 'second'), {});
  assert.deepEqual(await hooks.removeHook(G, 'second'), {}, 'removeHook never 404s');
  await rejects(() => hooks.hook(G, 'second'), 404, 'ResourceNotFound');
  assert.deepEqual((await hooks.listHooks(G)).hooks.map(h => h.hookId), [H]);
});

check('Auth.role', async () => {
  const role = await auth.role(`hook-id:${G}/*`);
  assert.equal(role.roleId, `hook-id:${G}/*`);
  assert.deepEqual([...role.scopes].sort(), [...ROLE_SCOPES].sort());
  await rejects(() => auth.role('no-such-role'), 404, 'ResourceNotFound');
});

check('Auth.listRoles', async () => {
  const roles = await auth.listRoles();
  assert.ok(Array.isArray(roles), JSON.stringify(roles));
  assert.ok(roles.some(r => r.roleId === `hook-id:${G}/*`));
});

check('Auth.expandScopes', async () => {
  await auth.createRole(`${ADMIN}:*`, { description: 'admins', scopes: ['hooks:modify-hook:project-<..>/*'] });
  const { scopes } = await auth.expandScopes({ scopes: [`assume:${ADMIN}:zap`] });
  assert.ok(scopes.includes('hooks:modify-hook:project-zap/*'), JSON.stringify(scopes));
  assert.ok(scopes.includes(`assume:${ADMIN}:zap`));
});

check('Auth.updateRole', async () => {
  const updated = await auth.updateRole(`${ADMIN}:*`, { description: 'admins, updated', scopes: ['hooks:get:*'] });
  assert.equal(updated.description, 'admins, updated');
  assert.deepEqual(updated.scopes, ['hooks:get:*']);
  assert.deepEqual((await auth.role(`${ADMIN}:*`)).scopes, ['hooks:get:*']);
  const { scopes } = await auth.expandScopes({ scopes: [`assume:${ADMIN}:zap`] });
  assert.ok(!scopes.includes('hooks:modify-hook:project-zap/*'));
  await rejects(() => auth.updateRole('no-such-role', { description: '', scopes: [] }), 404, 'ResourceNotFound');
});

check('Auth.deleteRole', async () => {
  assert.deepEqual(await auth.deleteRole(`${ADMIN}:*`), {});
  await rejects(() => auth.role(`${ADMIN}:*`), 404, 'ResourceNotFound');
  assert.deepEqual(await auth.deleteRole(`${ADMIN}:*`), {}, 'deleting an absent role succeeds');
});

check('Auth.createClient', async () => {
  const carol = await clientWith(`${C}carol`, ['hooks:get:*', 'auth:current-scopes']);
  assert.equal(carol.created.description, `js conformance ${C}carol`);
  assert.deepEqual(carol.created.scopes, ['auth:current-scopes', 'hooks:get:*']);
  assert.equal(new Date(carol.created.expires).getTime(), carol.expires.getTime());
  state.carol = carol;
  // It authenticates with the token it was given, and holds only its scopes.
  assert.deepEqual(await carol.hooks.hook(G, H), state.definition);
  const err = await rejects(() => carol.hooks.listHookGroups(), 403, 'InsufficientScopes');
  assert.match(err.message, /hooks:list-hooks:/);
  await rejects(() => carol.hooks.createHook(G, 'by-carol', hookBody()), 403, 'InsufficientScopes');
  // A client cannot be given scopes its creator lacks.
  await rejects(() => carol.auth.createClient(`${C}dave`, { description: '', expires: taskcluster.fromNow('1 day'), scopes: ['*'] }), 403, 'InsufficientScopes');
  // `static/` is reserved for configured clients.
  const reserved = await rejects(() => auth.createClient('static/other', { description: 'x', expires: taskcluster.fromNow('1 day') }), 400, 'InputError');
  assert.match(reserved.message, /reserved for statically configured clients/);
  await rejects(() => auth.createClient(`${C}carol`, { description: 'different', expires: taskcluster.fromNow('2 days'), scopes: [] }), 409, 'RequestConflict');
});

check('Auth.client', async () => {
  const got = await auth.client(`${C}carol`);
  assert.equal(got.clientId, `${C}carol`);
  assert.ok(!('accessToken' in got));
  assert.deepEqual(got.scopes, ['auth:current-scopes', 'hooks:get:*']);
  assert.equal(got.description, `js conformance ${C}carol`);
  await rejects(() => auth.client(`${C}nobody`), 404, 'ResourceNotFound');
});

check('Auth.listClients', async () => {
  await clientWith(`${C}erin`, []);
  const { clients } = await auth.listClients({ prefix: C });
  assert.deepEqual(clients.map(c => c.clientId).sort(), [`${C}carol`, `${C}erin`]);
  assert.ok(clients.every(c => !('accessToken' in c)));
  // Paged: `limit` and `continuationToken`.
  const first = await auth.listClients({ prefix: C, limit: 1 });
  assert.equal(first.clients.length, 1, `listClients({prefix, limit: 1}) answered ${first.clients.length} clients: ${JSON.stringify(first)}`);
  assert.ok(first.continuationToken, `a first page of one of two clients has a continuationToken: ${JSON.stringify(first)}`);
  const second = await auth.listClients({ prefix: C, limit: 1, continuationToken: first.continuationToken });
  assert.equal(second.clients.length, 1);
  assert.notEqual(second.clients[0].clientId, first.clients[0].clientId);
});

check('Auth.currentScopes', async () => {
  const { scopes } = await state.carol.auth.currentScopes();
  assert.ok(scopes.includes('hooks:get:*'), JSON.stringify(scopes));
  assert.ok(!scopes.includes('*'));
  assert.ok((await auth.currentScopes()).scopes.includes('*'), 'the root client holds `*`');
  await rejects(() => authAs({ clientId: `${C}carol`, accessToken: 'wrong' }).currentScopes(), 401, 'AuthenticationFailed');
  const unknown = await rejects(() => authAs({ clientId: `${C}nobody-at-all`, accessToken: 'x' }).currentScopes(), 401, 'AuthenticationFailed');
  assert.match(unknown.message, /unknown client/);
});

check('Auth.resetAccessToken', async () => {
  const reset = await auth.resetAccessToken(`${C}carol`);
  assert.equal(reset.clientId, `${C}carol`);
  assert.notEqual(reset.accessToken, state.carol.created.accessToken);
  await rejects(() => state.carol.auth.currentScopes(), 401, 'AuthenticationFailed');
  const renewed = authAs({ clientId: `${C}carol`, accessToken: reset.accessToken });
  assert.ok((await renewed.currentScopes()).scopes.includes('hooks:get:*'));
});

check('Auth.deleteClient', async () => {
  assert.deepEqual(await auth.deleteClient(`${C}carol`), {});
  await rejects(() => auth.client(`${C}carol`), 404, 'ResourceNotFound');
  assert.deepEqual(await auth.deleteClient(`${C}carol`), {}, 'deleting an absent client succeeds');
  assert.deepEqual((await auth.listClients({ prefix: C })).clients.map(c => c.clientId), [`${C}erin`]);
});

check('Auth.getEntityHistory', async () => {
  const { auditHistory } = await auth.getEntityHistory('hook', `${G}/second`);
  assert.deepEqual(auditHistory.map(e => [e.actionType, e.clientId, e.entityType, e.entityId]), [
    ['created', rootCredentials.clientId, 'hook', `${G}/second`],
    ['updated', rootCredentials.clientId, 'hook', `${G}/second`],
    ['deleted', rootCredentials.clientId, 'hook', `${G}/second`],
  ]);
  const first = await auth.getEntityHistory('hook', `${G}/second`, { limit: '2' });
  assert.equal(first.auditHistory.length, 2);
  const rest = await auth.getEntityHistory('hook', `${G}/second`, { limit: '2', continuationToken: first.continuationToken });
  assert.deepEqual([...first.auditHistory, ...rest.auditHistory], auditHistory);
  assert.ok(!rest.continuationToken);
  const roles = await auth.getEntityHistory('role', `${ADMIN}:*`);
  assert.deepEqual(roles.auditHistory.map(e => e.actionType), ['created', 'updated', 'deleted']);
  await rejects(() => auth.getEntityHistory('gadget', 'x'), 400, 'InvalidRequestArguments');
});

check('Auth.listAuditHistory', async () => {
  const maker = await clientWith(`${C}maker`, [`hooks:modify-hook:${G}/by-maker`, `assume:hook-id:${G}/*`]);
  await maker.hooks.createHook(G, 'by-maker', hookBody('by maker'));
  const { auditHistory } = await auth.listAuditHistory(`${C}maker`);
  assert.deepEqual(auditHistory.map(e => [e.entityType, e.entityId, e.actionType, e.clientId]), [
    ['hook', `${G}/by-maker`, 'created', `${C}maker`],
  ]);
  // The role assumed lets it create that hook only.
  await rejects(() => maker.hooks.createHook(G, 'elsewhere', hookBody()), 403, 'InsufficientScopes');
});

// Scopes the Hooks methods require (the Hooks reference's), each refused to a client
// made without them, before any look at existence.
check('InsufficientScopes for every Hooks method', async () => {
  const nobody = (await clientWith(`${C}nobody`, [])).hooks;
  const calls = {
    listHookGroups: [() => nobody.listHookGroups(), 'hooks:list-hooks:'],
    listHooks: [() => nobody.listHooks(G), `hooks:list-hooks:${G}`],
    hook: [() => nobody.hook(G, H), `hooks:get:${G}:${H}`],
    getHookStatus: [() => nobody.getHookStatus(G, H), `hooks:status:${G}/${H}`],
    createHook: [() => nobody.createHook(G, 'x', hookBody()), `hooks:modify-hook:${G}/x`],
    updateHook: [() => nobody.updateHook(G, H, hookBody()), `assume:hook-id:${G}/${H}`],
    removeHook: [() => nobody.removeHook(G, H), `hooks:modify-hook:${G}/${H}`],
    triggerHook: [() => nobody.triggerHook(G, H, {}), `hooks:trigger-hook:${G}/${H}`],
    getTriggerToken: [() => nobody.getTriggerToken(G, H), `hooks:get-trigger-token:${G}/${H}`],
    resetTriggerToken: [() => nobody.resetTriggerToken(G, H), `hooks:reset-trigger-token:${G}/${H}`],
    listLastFires: [() => nobody.listLastFires(G, H), `hooks:list-last-fires:${G}/${H}`],
  };
  for (const [name, [call, scope]] of Object.entries(calls)) {
    const err = await rejects(call, 403, 'InsufficientScopes');
    assert.ok(err.message.includes(scope), `${name}: ${err.message}`);
    assert.equal(err.body.requestInfo.method, name);
  }
  await rejects(() => nobody.hook('bad id', 'x'), 403, 'InsufficientScopes');
  // One who may only trigger.
  const trigger = (await clientWith(`${C}trigger-only`, [`hooks:trigger-hook:${G}/${H}`])).hooks;
  assert.ok((await trigger.triggerHook(G, H, { go: true })).taskId);
  await rejects(() => trigger.hook(G, H), 403, 'InsufficientScopes');
  await rejects(() => trigger.triggerHook(G, 'other', { go: true }), 403, 'InsufficientScopes');
});

check('createTemporaryCredentials', async () => {
  const now = new Date();
  const temp = taskcluster.createTemporaryCredentials({
    credentials: rootCredentials,
    start: new Date(now.getTime() - 60 * 1000),
    expiry: new Date(now.getTime() + 60 * 60 * 1000),
    scopes: [`hooks:get:${G}:*`],
  });
  const limited = hooksAs(temp);
  assert.deepEqual(await limited.hook(G, H), state.definition);
  await rejects(() => limited.listHookGroups(), 403, 'InsufficientScopes');
  // The certificate's scopes, and (as for every caller) the anonymous role's; not the issuer's.
  const tempScopes = (await authAs(temp).currentScopes()).scopes;
  assert.ok(tempScopes.includes(`hooks:get:${G}:*`), JSON.stringify(tempScopes));
  const allowed = (await auth.expandScopes({ scopes: [`hooks:get:${G}:*`, 'assume:anonymous'] })).scopes;
  assert.deepEqual(tempScopes.filter(s => !allowed.includes(s)), [], 'only the certificate\'s scopes');
  const named = taskcluster.createTemporaryCredentials({
    clientId: `${C}temporary`,
    credentials: rootCredentials,
    start: new Date(now.getTime() - 60 * 1000),
    expiry: new Date(now.getTime() + 60 * 60 * 1000),
    scopes: ['hooks:list-hooks:*'],
  });
  assert.equal(named.clientId, `${C}temporary`);
  assert.ok((await hooksAs(named).listHookGroups()).groups.includes(G));
  // An expired certificate is refused.
  const expired = taskcluster.createTemporaryCredentials({
    credentials: rootCredentials,
    start: new Date(now.getTime() - 2 * 60 * 60 * 1000),
    expiry: new Date(now.getTime() - 60 * 60 * 1000),
    scopes: ['hooks:list-hooks:*'],
  });
  await rejects(() => hooksAs(expired).listHookGroups(), 401, 'AuthenticationFailed');
});

check('authorizedScopes', async () => {
  const narrowed = hooksAs(rootCredentials, { authorizedScopes: ['hooks:list-hooks:'] });
  assert.ok((await narrowed.listHookGroups()).groups.includes(G));
  await rejects(() => narrowed.hook(G, H), 403, 'InsufficientScopes');
});

check('buildSignedUrl', async () => {
  const raw = new taskcluster.Hooks(options(rootCredentials));
  const signed = raw.buildSignedUrl(raw.hook, G, H);
  const resp = await fetch(signed);
  assert.equal(resp.status, 200);
  assert.deepEqual(await resp.json(), state.definition);
  const unsigned = await fetch(raw.buildUrl(raw.hook, G, H));
  assert.equal(unsigned.status, 403, 'without the bewit the caller has no scopes');
  const moved = await fetch(signed.replace(encodeURIComponent(H), 'other'));
  assert.equal(moved.status, 401, 'a bewit is for its own URL');
});

let failed = 0;
for (const { name, fn } of checks) {
  try {
    await fn();
    console.log(`ok - ${name}`);
  } catch (err) {
    failed++;
    console.log(`not ok - ${name}: ${err.stack || err}`);
  }
}

// Coverage: every Hooks method of the client's reference, and the Auth subset.
const hooksMethods = referenceMethods(taskcluster.Hooks);
const authMethods = referenceMethods(taskcluster.Auth);
assert.ok(hooksMethods.length >= 16, `the client's Hooks reference has ${hooksMethods.length} methods`);
const missingInClient = AUTH_SUBSET.filter(m => !authMethods.includes(m));
if (missingInClient.length) {
  failed++;
  console.log(`not ok - the client's Auth reference lacks ${missingInClient.join(', ')}`);
}
const required = [...hooksMethods.map(m => `Hooks.${m}`), ...AUTH_SUBSET.filter(m => authMethods.includes(m)).map(m => `Auth.${m}`)];
const uncalled = required.filter(m => !called.has(m));
if (uncalled.length) {
  failed++;
  console.log(`not ok - never called: ${uncalled.join(', ')}`);
} else {
  console.log(`ok - called all ${required.length} methods (${hooksMethods.length} Hooks, ${required.length - hooksMethods.length} Auth)`);
}

console.log(`conformance.mjs: ${checks.length + 1 - failed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
