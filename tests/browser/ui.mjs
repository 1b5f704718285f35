// Clicks through the taskhooks UI in Debian's Chromium (headless), against a running host:
// sign in, create a hook (with inline validation first), edit it, trigger it (the
// triggerSchema refusing a payload first), reveal and reset its token, remove it; API
// errors as the API states them, loading states, keyboard use, anonymous read-only use.
//
//   node tests/browser/ui.mjs ROOT_URL CLIENT_ID ACCESS_TOKEN [SCREENSHOT_DIR]

import { createHmac, createHash, randomBytes } from "node:crypto";
import { chromium } from "playwright-core";

const [rootUrl, clientId, accessToken, shots] = process.argv.slice(2);
const G = "ui-test";
const H = "nightly/build";

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
  console.log(`ok - ${message}`);
}

// A Hawk-signed API call from Node (set-up the UI has no page for, and checking the
// editor's rules against the service's).
async function signedCall(method, path, body, { allowError = false } = {}) {
  const url = new URL(path, rootUrl);
  const text = body === undefined ? undefined : JSON.stringify(body);
  const ts = Math.floor(Date.now() / 1000);
  const nonce = randomBytes(6).toString("hex");
  const hash = text === undefined ? "" : createHash("sha256").update(`hawk.1.payload\napplication/json\n${text}\n`).digest("base64");
  const port = url.port || (url.protocol === "https:" ? 443 : 80);
  const normalized = `hawk.1.header\n${ts}\n${nonce}\n${method}\n${url.pathname}${url.search}\n${url.hostname}\n${port}\n${hash}\n\n`;
  const mac = createHmac("sha256", accessToken).update(normalized).digest("base64");
  const headers = { authorization: `Hawk id="${clientId}", ts="${ts}", nonce="${nonce}"${hash ? `, hash="${hash}"` : ""}, mac="${mac}"` };
  if (text !== undefined) headers["content-type"] = "application/json";
  const resp = await fetch(url, { method, body: text, headers });
  if (!resp.ok && !allowError) throw new Error(`${method} ${path}: ${resp.status} ${await resp.text()}`);
  return resp.status;
}

const definition = (name, owner = "ops@example.com") => ({
  metadata: { name, description: "built by the browser test", owner, emailOnError: false },
  schedule: ["0 0 3 * * *"],
  task: {
    taskQueueId: "proj/ci",
    schedulerId: "-",
    payload: { branch: "${payload.branch}" },
    metadata: { name, description: "", owner: "ops@example.com", source: "https://example.com" },
  },
  triggerSchema: { type: "object", required: ["branch"], properties: { branch: { type: "string" } }, additionalProperties: false },
});

// Debian's Chromium now and then dies while starting on a loaded CI machine (a SIGSEGV
// before any page exists, seen once in CI): a launch is tried up to three times. A crash
// after the launch still fails the test.
async function launch() {
  for (let attempt = 1; ; attempt++) {
    try {
      return await chromium.launch({ executablePath: process.env.CHROMIUM || "/usr/bin/chromium", args: ["--no-sandbox"] });
    } catch (e) {
      if (attempt === 3) throw e;
      console.log(`# Chromium did not start (attempt ${attempt}): ${String(e).split("\n")[0]}`);
    }
  }
}
const browser = await launch();
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));

  // Anonymous, with no `anonymous` role: the API's 403, as the API states it.
  await page.goto(rootUrl);
  await page.getByRole("alert").first().waitFor();
  check((await page.getByRole("alert").first().textContent()).includes("InsufficientScopes (403)"), "an anonymous visitor sees the API's 403 as stated");

  // Sign in, by keyboard.
  await page.getByLabel("Client ID").fill(clientId);
  await page.getByLabel("Access token").fill(accessToken);
  await page.getByLabel("Access token").press("Enter");
  await page.getByText(`Signed in as ${clientId}`).waitFor();
  check(await page.locator("#signin").isHidden(), "signed in, the sign-in form gives way to the client id and Sign out");
  check(!(await page.content()).includes(accessToken), "the access token is not in the page");
  check(await page.evaluate(() => sessionStorage.getItem("taskhooks.credentials") !== null), "credentials are kept in session storage");

  // The editor's checks agree with the service: what they pass, createHook accepts; what
  // they refuse, createHook refuses.
  const valid = definition("Agree");
  const cases = {
    valid,
    "extra property": { ...valid, color: "red" },
    "no owner": { ...valid, metadata: { name: "n", description: "d" } },
    "owner not an e-mail": { ...valid, metadata: { ...valid.metadata, owner: "nobody" } },
    "empty name": { ...valid, metadata: { ...valid.metadata, name: "" } },
    "long name": { ...valid, metadata: { ...valid.metadata, name: "n".repeat(256) } },
    "repeated schedule": { ...valid, schedule: ["0 0 3 * * *", "0 0 3 * * *"] },
    "binding without pattern": { ...valid, bindings: [{ exchange: "exchange/x" }] },
    "binding with extra": { ...valid, bindings: [{ exchange: "exchange/x", routingKeyPattern: "#", queue: "q" }] },
    "triggerSchema a list": { ...valid, triggerSchema: [] },
    "no task": { metadata: valid.metadata },
  };
  let agreed = 0;
  for (const [name, def] of Object.entries(cases)) {
    const problems = await page.evaluate(async (d) => (await import("/ui/app.js")).hookProblems(d, "ui-check", "h"), def);
    const status = await signedCall("PUT", `/api/hooks/v1/hooks/ui-check/h`, def, { allowError: true });
    if (status === 200) await signedCall("DELETE", "/api/hooks/v1/hooks/ui-check/h");
    if ((problems.length === 0) !== (status === 200)) throw new Error(`editor and service disagree on "${name}": ${JSON.stringify(problems)} vs ${status}`);
    agreed += 1;
  }
  check(agreed === Object.keys(cases).length, `the editor's checks agree with the service on ${agreed} definitions`);

  // Create: inline validation before anything is sent.
  await page.getByRole("link", { name: "New hook" }).click();
  await page.getByLabel("Hook group", { exact: true }).fill(G);
  await page.getByLabel("Hook id", { exact: true }).fill(H);
  const editor = page.getByLabel("Hook definition (JSON)");
  await editor.fill('{"metadata": ');
  await page.locator("#editor-problems li").first().waitFor();
  check(/Line 1, column/.test(await page.locator("#editor-problems").textContent()), "a JSON syntax error is shown inline with its position");
  check(await page.locator("#save").isDisabled(), "a hook with problems cannot be sent");
  await editor.fill(JSON.stringify(definition("Nightly", "not-an-email"), null, 2));
  await page.getByText("metadata.owner: must be an e-mail address").waitFor();
  check(true, "a schema problem is shown inline with its path");
  await editor.fill(JSON.stringify(definition("Nightly"), null, 2));
  await page.getByText(/Next fires: /).waitFor();
  check(await page.locator("#save").isEnabled(), "a valid definition can be sent; its schedule is previewed");
  if (shots) await page.screenshot({ path: `${shots}/editor.png` });
  await page.locator("#save").click();
  await page.getByRole("heading", { name: `${G}/${H}` }).waitFor();
  await page.locator("#definition").waitFor();
  check((await page.locator("#definition").textContent()).includes('"name": "Nightly"'), "the created hook's page shows its definition");
  // The explorer reloads its list after the save: wait for it rather than race it.
  await page.getByRole("link", { name: H }).waitFor({ timeout: 10000 });
  check(await page.getByRole("link", { name: H }).isVisible(), "the explorer lists the new hook");

  // Edit.
  await page.getByRole("link", { name: "Edit" }).click();
  await page.locator("#editor:not([disabled])").waitFor();
  const edited = JSON.parse(await editor.inputValue());
  edited.metadata.name = "Nightly build";
  await editor.fill(JSON.stringify(edited, null, 2));
  await page.getByRole("button", { name: "Save changes" }).click();
  await page.locator("#definition").waitFor();
  check((await page.locator("#definition").textContent()).includes('"name": "Nightly build"'), "an edit is saved and shown");
  check(!(await page.locator("main").textContent()).includes("null"), "no stray placeholder text on a hook's page");
  // The history tab: who changed what, with the diff.
  await page.locator("#history").waitFor();
  const rows = await page.locator("#history tbody tr").allTextContents();
  check(rows.length === 2 && rows[0].includes("updated") && rows[0].includes(clientId) && rows[1].includes("created"), "the history lists the creation and the edit, newest first, by whom");
  await page.locator("#history summary").first().click();
  const removed = await page.locator("#history .diff .removed").first().textContent();
  const added = await page.locator("#history .diff .added").first().textContent();
  check(removed.includes('"name": ') && !removed.includes("Nightly build") && added.includes('"name": "Nightly build"'), "the edit's diff shows the old and the new name");

  // Trigger: the triggerSchema refuses a payload before anything fires.
  await page.getByRole("link", { name: "Trigger" }).click();
  const payload = page.getByLabel("Trigger payload (JSON)");
  await payload.fill('{"branch": 5}');
  await page.getByRole("button", { name: "Trigger hook" }).click();
  await page.locator("#payload-problems li").waitFor();
  check((await page.locator("#payload-problems").textContent()).startsWith("triggerSchema:"), "a payload the triggerSchema refuses is shown inline, nothing fired");
  await payload.fill('{"branch": "main"}');
  await page.getByRole("button", { name: "Preview task" }).click();
  await page.getByRole("heading", { name: "Preview: task" }).waitFor();
  check((await page.locator("#preview pre").textContent()).includes('"branch": "main"'), "the dry run previews the task");
  await page.getByRole("button", { name: "Trigger hook" }).click();
  await page.locator("#fired").waitFor();
  const taskId = await page.locator("#fired a").textContent();
  check(/^[A-Za-z0-9_-]{22}$/.test(taskId), `the trigger created task ${taskId}`);

  // Back on the hook: the fire is listed; loading states show while calls are slow.
  await page.route("**/last-fires*", async (route) => { await new Promise((r) => setTimeout(r, 700)); await route.continue(); });
  await page.getByRole("link", { name: "Back to the hook" }).click();
  await page.getByText("Loading…").first().waitFor();
  check(true, "a slow call shows a loading state");
  await page.getByRole("cell", { name: taskId }).waitFor();
  check(await page.getByRole("cell", { name: "success" }).isVisible(), "lastFires lists the fire as a success");
  await page.unroute("**/last-fires*");
  // The fires at a glance: the last 24 hours and 30 days, the trigger in the current hour.
  await page.locator("#fire-charts svg").nth(1).waitFor();
  check(await page.locator("#fire-charts svg").count() === 2 && await page.locator("#fire-charts svg").first().locator("g.bar").count() === 24
    && await page.locator("#fire-charts svg").nth(1).locator("g.bar").count() === 30, "the hook's page charts its fires over 24 hours and 30 days");
  const lastHour = await page.locator("#fire-charts svg").first().locator("g.bar title").last().textContent();
  check(lastHour.includes("1 success, 0 error, 0 declined"), `the current hour's bar counts the trigger (${lastHour})`);
  check(await page.locator("#fire-charts svg").first().locator("rect.s-success").count() === 1, "one bar drawn, in the success colour");
  // A hook whose last fire failed is marked in the explorer.
  await signedCall("PUT", `/api/hooks/v1/hooks/${G}/broken`, { ...definition("Broken"), task: { ...definition("Broken").task, payload: { x: "${payload.missing}" } }, triggerSchema: { type: "object" } });
  await signedCall("POST", `/api/hooks/v1/hooks/${G}/broken/trigger`, {}, { allowError: true });
  await page.reload();
  await page.locator("#explorer a.failed").waitFor();
  check((await page.locator("#explorer a.failed").allTextContents()).map((t) => t.replace(" ✗", "")).join(",") === "broken", "the explorer marks the hook whose last fire failed, and only it");
  await page.locator("#fire-charts svg").nth(1).waitFor();
  if (shots) await page.screenshot({ path: `${shots}/hook.png`, fullPage: true });

  // The trigger token: revealed and reset only after a confirmation.
  await page.getByRole("button", { name: "Show trigger token" }).click();
  await page.getByRole("dialog").waitFor();
  await page.getByRole("button", { name: "Show token" }).click();
  const firstUrl = await page.locator("#token-url").textContent();
  check(firstUrl.startsWith(`${rootUrl}/api/hooks/v1/hooks/${G}/`), "the token URL is shown after confirming");
  await page.getByRole("button", { name: "Reset trigger token" }).click();
  await page.getByRole("button", { name: "Cancel" }).click();
  check((await page.locator("#token-url").textContent()) === firstUrl, "cancelling keeps the token");
  await page.getByRole("button", { name: "Reset trigger token" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Reset token" }).click();
  await page.waitForFunction((old) => document.querySelector("#token-url")?.textContent !== old, firstUrl);
  check(true, "resetting after confirming shows a new token URL");

  // Keyboard: the remove dialog opens with Enter and closes with Escape, nothing removed.
  await page.getByRole("button", { name: "Remove" }).focus();
  await page.keyboard.press("Enter");
  await page.getByRole("dialog").waitFor();
  check(await page.evaluate(() => document.activeElement.id === "confirm-cancel"), "the dialog focuses Cancel");
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  check(await page.getByRole("heading", { name: `${G}/${H}` }).isVisible(), "Escape cancels the removal");

  // Phone-sized screen.
  if (shots) {
    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2 });
    const small = await phone.newPage();
    await small.goto(rootUrl);
    await small.evaluate(([id, token]) => sessionStorage.setItem("taskhooks.credentials", JSON.stringify({ clientId: id, accessToken: token })), [clientId, accessToken]);
    await small.goto(`${rootUrl}/#/hooks/${G}/${encodeURIComponent(H)}`);
    await small.reload();
    await small.locator("#definition").waitFor();
    await small.getByRole("cell", { name: "success" }).waitFor();
    await small.screenshot({ path: `${shots}/phone.png`, fullPage: false });
    await phone.close();
  }
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  await page.setViewportSize({ width: 390, height: 844 });
  check(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1), `no sideways scrolling on a phone (laptop width ${width})`);
  await page.setViewportSize({ width: 1280, height: 800 });

  // Cron projects: the list, a project's page with what the last tick read, its dry run,
  // and a job's hook, which is changed through the repository rather than here.
  await signedCall("PUT", "/api/taskhooks/v1/cron-projects/ui-cron", { repository: { url: process.env.REPOSITORY_URL, type: "git", level: "1" } });
  await page.goto(`${rootUrl}/#/cron-projects`);
  await page.getByRole("link", { name: "ui-cron" }).click();
  await page.locator("#cron-status").waitFor();
  check((await page.locator("#cron-status").textContent()).includes("Not read yet"), "a project not read yet says so");
  await signedCall("POST", "/api/taskhooks/v1/tick", undefined);
  await page.reload();
  await page.locator("#cron-status a").first().waitFor();
  check((await page.locator("#cron-status a").allTextContents()).join(",") === "by-hand,nightly", "after a tick the project lists its jobs, each linking to its hook");
  await page.getByLabel("Slot (UTC; empty: now)").fill("2027-03-01T05:00");
  await page.getByRole("button", { name: "Dry run" }).click();
  await page.locator("#dry-run-result summary").first().waitFor();
  check((await page.locator("#dry-run-result").textContent()).includes("Slot 2027-03-01T05:00:00.000Z") &&
    (await page.locator("#dry-run-result summary").allTextContents()).every((t) => t.startsWith("nightly: task ")), "the dry run shows the slot's job and its task");
  if (shots) await page.screenshot({ path: `${shots}/cron-project.png`, fullPage: true });
  await page.getByRole("link", { name: "nightly" }).first().click();
  await page.locator("#managed").waitFor();
  check(await page.getByRole("link", { name: "Edit" }).count() === 0 && await page.getByRole("button", { name: "Remove" }).count() === 0,
    "a job's hook page links its project and offers no Edit or Remove");
  check(await page.getByRole("link", { name: "Trigger" }).isVisible(), "a job's hook can still be triggered from the UI");

  // Anonymous read-only use once the deployment grants reads to `anonymous`.
  await signedCall("PUT", "/api/auth/v1/roles/anonymous", { description: "read-only", scopes: ["hooks:list-hooks:*", "hooks:get:*"] });
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.goto(`${rootUrl}/#/hooks/${G}/${encodeURIComponent(H)}/trigger`);
  await page.getByLabel("Trigger payload (JSON)").fill('{"branch": "main"}');
  await page.getByRole("button", { name: "Trigger hook" }).click();
  await page.getByRole("alert").waitFor();
  check((await page.getByRole("alert").textContent()).includes("InsufficientScopes (403)"), "an anonymous trigger gets the API's 403");
  await page.goto(`${rootUrl}/#/hooks/${G}/${encodeURIComponent(H)}`);
  await page.locator("#definition").waitFor();
  check(true, "an anonymous visitor reads the hook when `anonymous` may");

  // Remove, signed in again.
  await page.getByLabel("Client ID").fill(clientId);
  await page.getByLabel("Access token").fill(accessToken);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.locator("#definition").waitFor();
  await page.getByRole("button", { name: "Remove" }).click();
  await page.getByRole("dialog").getByRole("button", { name: "Remove" }).click();
  await page.getByRole("heading", { name: `Hooks in ${G}` }).waitFor();
  await page.waitForFunction((h) => ![...document.querySelectorAll("main a")].some((a) => a.textContent === h), H);
  check(true, "the removed hook is gone from its group");

  const scriptErrors = consoleErrors.filter((e) => !/status of 40[34]/.test(e));
  check(scriptErrors.length === 0, `no script errors ${scriptErrors.join("; ")}`);
} finally {
  await browser.close();
}
