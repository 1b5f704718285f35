"""Cron projects end to end: the built components read `.cron.yml` and `.taskcluster.yml`
from a repository host on loopback speaking GitHub's and hg.mozilla.org's protocols
(`fake_repository`), keep one managed hook per job, and fire each job's decision task in
the embedded queue. The expected fires are worked out here, independently, from the rules
build-decision applies to `when` (`due`)."""

import datetime
import json
import os
import re
import subprocess
import sys

import pytest
import taskcluster

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, SECRETS_KEY, RunningHost, Spawned, host_binary
from fake_repository import FakeRepositoryHost
from taskhooks_client import Taskhooks

# Monday 2027-03-01: the week holds the 3rd (a `day` job) and every weekday once.
WEEK = datetime.datetime(2027, 3, 1, tzinfo=datetime.timezone.utc)
SLOT = datetime.timedelta(minutes=15)

TASKCLUSTER_YML = """\
version: 1
tasks:
  - $if: 'tasks_for == "cron"'
    then:
      taskId: {$eval: ownTaskId}
      taskGroupId: {$eval: ownTaskId}
      taskQueueId: "proj-${repository.level}/decision"
      schedulerId: "${repository.project}-level-${repository.level}"
      created: {$fromNow: ''}
      deadline: {$fromNow: '1 day'}
      routes:
        $if: 'cron.job_name == "privileged"'
        then: ["index.secret.${repository.project}"]
        else: []
      metadata:
        name: "Decision Task for cron job ${cron.job_name}"
        description: "Created by a cron project"
        owner: "cron@example.com"
        source: "${repository.url}/raw/${push.revision}/.taskcluster.yml"
      payload:
        command: "decision --project=${repository.project} ${cron.quoted_args}"
      extra:
        slot: {$eval: now}
        job: "${cron.job_name}"
        symbol: "${cron.job_symbol}"
        revision: "${push.revision}"
        push: {$eval: push}
        input: {$eval: cron.input}
        rootUrl: {$eval: taskcluster_root_url}
"""


def job(name, when, symbol="C", **extra):
    j = {"name": name, "job": {"type": "decision-task", "treeherder-symbol": symbol, "target-tasks-method": f"{name}_tasks", **extra.pop("job", {})}, "when": when}
    j.update(extra)
    return j


def yml(jobs):
    """`.cron.yml` as real projects write it (block YAML, by hand)."""
    import json
    return "# Definitions for jobs that run periodically.\n---\njobs:\n" + "".join(f"  - {json.dumps(j)}\n" for j in jobs)


FENIX_JOBS = [
    job("nightly", {"by-project": {"fenix": [{"hour": 5, "minute": 0}], "default": []}}, "N"),
    job("weekly", [{"weekday": "Monday", "hour": 10, "minute": 30}], "W"),
    job("monthly", [{"day": 3, "hour": 0, "minute": 0}], "M"),
    job("pair-a", [{"hour": 12, "minute": 15}], "A"),
    job("pair-b", [{"hour": 12, "minute": 15}], "B"),
    # Same slot as the pair; its role lacks the route's scope, so it fails alone.
    job("privileged", [{"hour": 12, "minute": 15}], "P"),
    job("elsewhere", [{"minute": 0}], "E", **{"run-on-projects": ["mozilla-central"]}),
    job("by-hand", [], "H"),
]
# After three days: weekly gone, nightly an hour later, a Thursday job added.
FENIX_JOBS_LATER = [j for j in FENIX_JOBS if j["name"] not in ("weekly", "nightly")] + [
    job("nightly", {"by-project": {"fenix": [{"hour": 6, "minute": 0}], "default": []}}, "N"),
    job("thursday", [{"weekday": "Thursday", "hour": 8, "minute": 0}, {"weekday": "Thursday", "hour": 20}], "T"),
]
CENTRAL_JOBS = [
    # A regular expression key: every quarter of hour 3.
    job("nightly-desktop", {"by-project": {"mozilla-(central|beta)": [{"hour": 3}], "default": []}}, "Nd"),
    job("release", [], "R", job={"include-cron-input": True, "optimize-target-tasks": False}),
    job("elsewhere", [{"minute": 0}], "E", **{"run-on-projects": ["mozilla-central"]}),
    # Both day fields, which must match together (cron text would read either).
    job("friday-13th", [{"weekday": "Friday", "day": 13, "hour": 0, "minute": 0}], "F"),
]


def resolve(when, project):
    """taskgraph's keyed-by: the project's own key, else the one regular expression that
    matches it whole, else `default`."""
    if isinstance(when, list):
        return when
    keyed = when["by-project"]
    if project in keyed:
        return keyed[project]
    matching = [k for k in keyed if k != "default" and re.fullmatch(k, project)]
    if len(matching) == 1:
        return keyed[matching[0]]
    return keyed["default"]


def due(j, project, t):
    if "run-on-projects" in j and project not in j["run-on-projects"]:
        return False
    fields = {"minute": t.minute, "hour": t.hour, "day": t.day, "weekday": t.strftime("%A")}
    return any(all(fields[k] == v for k, v in entry.items()) for entry in resolve(j["when"], project))


def slots(first, count):
    return [first + i * SLOT for i in range(count)]


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


@pytest.fixture(scope="module")
def repos():
    r = FakeRepositoryHost()
    r.fenix = r.add("git", "org/fenix", "main", {".cron.yml": yml(FENIX_JOBS), ".taskcluster.yml": TASKCLUSTER_YML})
    r.central = r.add("hg", "mozilla-central", "default", {".cron.yml": yml(CENTRAL_JOBS), ".taskcluster.yml": TASKCLUSTER_YML})
    yield r
    r.stop()


def cron_env(repos):
    return {
        "SPIN_VARIABLE_REPOSITORY_HOSTS": repos.host,
        "SPIN_VARIABLE_GITHUB_API_URL": repos.github_api,
        "SPIN_VARIABLE_ALLOWED_REPOSITORY_HOST": repos.root,
        "SPIN_VARIABLE_PUBLIC_URL": "https://hooks.example.com",
    }


@pytest.fixture(scope="module")
def host(repos):
    h = RunningHost(cron_env(repos))
    yield h
    h.stop()


@pytest.fixture(scope="module")
def options(host):
    return {"rootUrl": host.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}


def component_process(host, env, name, at=None, repeat=1):
    """Runs of a cron component against the host's store: `repeat` of them, 15 minutes
    apart, from `at` (default now)."""
    full = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY, **env)
    cmd = [host_binary(), "cron", name, "--state-dir", host.state, "--repeat", str(repeat)]
    if at is not None:
        cmd += ["--at", str(int(at.timestamp()))]
    return Spawned(cmd, cwd=REPO, env=full)


def run_component(host, env, name, at=None, repeat=1):
    """`component_process`, waited for; its output."""
    proc = component_process(host, env, name, at, repeat)
    out = proc.communicate(timeout=600)[0]
    assert proc.returncode == 0, out[-3000:]
    return out


def timer_process(host, repos, at, repeat=1):
    return component_process(host, cron_env(repos), "timer", at, repeat)


def timer(host, repos, at, repeat=1):
    return run_component(host, cron_env(repos), "timer", at, repeat)


def fires_of(hooks, hook_id):
    fires, token = [], None
    while True:
        try:
            page = hooks.listLastFires("cron", hook_id, query={"limit": 1000, **({"continuationToken": token} if token else {})})
        except taskcluster.exceptions.TaskclusterRestFailure as e:
            if e.status_code == 404 and "never fired" in str(e):
                return []  # as upstream answers for a hook without fires
            raise
        fires += page["lastFires"]
        token = page.get("continuationToken")
        if not token:
            return fires


def fired_slots(hooks, queue, project, name):
    """The slots of the job's created tasks (their JSON-e `now`), and its failed fires."""
    created, failed = [], []
    for f in fires_of(hooks, f"{project}/{name}"):
        if f["result"] == "success":
            created.append(queue.task(f["taskId"])["extra"]["slot"])
        else:
            failed.append(f)
    return sorted(created), failed


def expected(jobs, project, ticks):
    return {j["name"]: [iso(t) for t in ticks if due(j, project, t)] for j in jobs}


def test_a_simulated_week_fires_exactly_the_jobs_the_rules_select_once_per_slot(repos, host, options):
    auth, hooks, queue, taskhooks = taskcluster.Auth(options), taskcluster.Hooks(options), taskcluster.Queue(options), Taskhooks(options)
    for path in (f"{repos.host}/org/fenix", f"{repos.host}/mozilla-central"):
        auth.createRole(f"repo:{path}:cron:*", {"description": "the cron jobs of a test repository", "scopes": ["queue:create-task:*", "queue:scheduler-id:*"]})
    taskhooks.putCronProject("fenix", {"repository": {"url": repos.fenix, "type": "git", "level": "3"}})
    taskhooks.putCronProject("mozilla-central", {"repository": {"url": repos.central, "type": "hg", "level": "3"}})

    # The tick before the week reads both files: one managed hook per job.
    timer(host, repos, WEEK - SLOT + datetime.timedelta(seconds=20))
    ids = sorted(h["hookId"] for h in hooks.listHooks("cron")["hooks"])
    assert ids == sorted([f"fenix/{j['name']}" for j in FENIX_JOBS] + [f"mozilla-central/{j['name']}" for j in CENTRAL_JOBS])
    # Managed: the hooks API refuses to change them, naming the project.
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
        hooks.removeHook("cron", "fenix/nightly")
    assert refused.value.status_code == 409 and "fenix" in str(refused.value)
    # Each job's hook shows its next fire from `when`.
    assert hooks.getHookStatus("cron", "fenix/monthly")["nextScheduledDate"] == "2027-03-03T00:00:00.000Z"
    assert hooks.getHookStatus("cron", "fenix/weekly")["nextScheduledDate"] == "2027-03-01T10:30:00.000Z"
    assert "nextScheduledDate" not in hooks.getHookStatus("cron", "fenix/by-hand") or \
        hooks.getHookStatus("cron", "fenix/by-hand")["nextScheduledDate"] > "2100"
    # Next fires, from `when`: a day and a weekday together.
    day, fridays = datetime.datetime.now(datetime.timezone.utc).date() + datetime.timedelta(days=1), []
    while len(fridays) < 3:
        if day.day == 13 and day.weekday() == 4:
            fridays.append(f"{day.isoformat()}T00:00:00.000Z")
        day += datetime.timedelta(days=1)
    assert taskhooks.nextFires("cron", "mozilla-central/friday-13th", query={"count": 3})["nextFires"] == fridays
    assert taskhooks.nextFires("cron", "fenix/by-hand")["nextFires"] == []

    # Three days of ticks, 20 s after each slot as Spin's cron trigger runs them.
    first = slots(WEEK, 3 * 96)
    out = timer(host, repos, WEEK + datetime.timedelta(seconds=20), len(first))
    assert out.count("cron projects 2 read, 0 failed") == len(first), out[-2000:]
    want = {"fenix": expected(FENIX_JOBS, "fenix", first), "mozilla-central": expected(CENTRAL_JOBS, "mozilla-central", first)}
    for project, jobs in (("fenix", FENIX_JOBS), ("mozilla-central", CENTRAL_JOBS)):
        for j in jobs:
            created, failed = fired_slots(hooks, queue, project, j["name"])
            if j["name"] == "privileged":
                assert created == [] and len(failed) == len(want[project]["privileged"]) == 3, failed
                assert all("queue:route:index.secret.fenix" in f["error"] for f in failed), failed[0]
            else:
                assert created == want[project][j["name"]], (project, j["name"])
                assert failed == []
    assert len(want["fenix"]["pair-a"]) == 3 and want["fenix"]["monthly"] == ["2027-03-03T00:00:00.000Z"]
    assert want["fenix"]["elsewhere"] == [] and len(want["mozilla-central"]["elsewhere"]) == 72
    assert len(want["mozilla-central"]["nightly-desktop"]) == 12

    # The tip once per project per tick; .cron.yml once per revision (a file at a
    # revision never changes); .taskcluster.yml once per tick that fired.
    ticks = 1 + len(first)
    for path in ("org/fenix", "mozilla-central"):
        assert repos.count(path, "tip") == ticks and repos.count(path, ".cron.yml") == 1
    fenix_slots = {t for j in FENIX_JOBS for t in want["fenix"][j["name"]]}
    assert repos.count("org/fenix", ".taskcluster.yml") == len(fenix_slots)

    # A task made as build-decision makes it: the context, the arguments, the revision.
    slot = "2027-03-02T05:00:00.000Z"
    [nightly] = [f for f in fires_of(hooks, "fenix/nightly") if queue.task(f["taskId"])["extra"]["slot"] == slot]
    task = queue.task(nightly["taskId"])
    assert task["payload"]["command"] == "decision --project=fenix --target-tasks-method=nightly_tasks"
    assert task["extra"]["push"] == {"branch": "main", "revision": repos.tip("org/fenix", "main"), "owner": "cron"}
    assert (task["extra"]["symbol"], task["extra"]["rootUrl"], task["schedulerId"]) == ("N", "https://hooks.example.com", "fenix-level-3")
    [hg] = fires_of(hooks, "mozilla-central/nightly-desktop")[:1]
    push = queue.task(hg["taskId"])["extra"]["push"]
    assert push["revision"] == repos.tip("mozilla-central", "default") and push["pushlog_id"] == "2" and push["owner"] == "cron"

    # The file changes on the host: the hooks change at the next tick.
    repos.commit("org/fenix", "main", {".cron.yml": yml(FENIX_JOBS_LATER)})
    rest = slots(WEEK + 3 * 96 * SLOT, 4 * 96)
    out = timer(host, repos, rest[0] + datetime.timedelta(seconds=20), len(rest))
    assert "job hooks created 1 updated 1 removed 1" in out, out[:3000]
    assert repos.count("org/fenix", ".cron.yml") == 2
    ids = sorted(h["hookId"] for h in hooks.listHooks("cron")["hooks"] if h["hookId"].startswith("fenix/"))
    assert ids == sorted(f"fenix/{j['name']}" for j in FENIX_JOBS_LATER)
    later = expected(FENIX_JOBS_LATER, "fenix", rest)
    for j in FENIX_JOBS_LATER:
        created, _ = fired_slots(hooks, queue, "fenix", j["name"])
        if j["name"] != "privileged":
            assert created == want["fenix"].get(j["name"], []) + later[j["name"]], j["name"]
    assert later["nightly"][0] == "2027-03-04T06:00:00.000Z" and len(later["thursday"]) == 5
    for j in CENTRAL_JOBS:
        created, _ = fired_slots(hooks, queue, "mozilla-central", j["name"])
        assert created == want["mozilla-central"][j["name"]] + expected(CENTRAL_JOBS, "mozilla-central", rest)[j["name"]]


def test_by_hand_a_job_runs_now_with_its_input_and_a_dry_run_creates_nothing(repos, host, options):
    hooks, queue, taskhooks = taskcluster.Hooks(options), taskcluster.Queue(options), Taskhooks(options)
    # include-cron-input: the trigger's payload is the job's cron.input.
    fired = hooks.triggerHook("cron", "mozilla-central/release", {"version": "148.0", "build_number": 1})
    task = queue.task(fired["status"]["taskId"])
    assert task["extra"]["input"] == {"version": "148.0", "build_number": 1}
    assert task["payload"]["command"] == "decision --project=mozilla-central --target-tasks-method=release_tasks --optimize-target-tasks=false"
    # Without it the input stays empty; `when: []` jobs still run by hand.
    task = queue.task(hooks.triggerHook("cron", "fenix/by-hand", {"ignored": True})["status"]["taskId"])
    assert task["extra"]["input"] == {} and task["extra"]["job"] == "by-hand"
    # The job's own scopes: the privileged job fails by hand too, naming the missing scope.
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
        hooks.triggerHook("cron", "fenix/privileged", {})
    assert refused.value.status_code == 403 and "queue:route:index.secret.fenix" in str(refused.value)

    # A dry run of a slot: the jobs due and their tasks; nothing is created.
    at = "2027-03-10T12:15:00Z"
    before = {j: len(fires_of(hooks, f"fenix/{j}")) for j in ("pair-a", "pair-b")}
    dry = taskhooks.dryRunCronProject("fenix", {"at": at})
    assert sorted(j["job"] for j in dry["jobs"]) == ["pair-a", "pair-b", "privileged"]
    assert dry["jobs"][0]["task"]["extra"]["slot"] == "2027-03-10T12:15:00.000Z"
    assert {j: len(fires_of(hooks, f"fenix/{j}")) for j in ("pair-a", "pair-b")} == before
    with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure):
        queue.task(dry["jobs"][0]["taskId"])


def test_a_repository_that_does_not_answer_keeps_its_jobs_due(repos, host, options):
    hooks, queue, taskhooks = taskcluster.Hooks(options), taskcluster.Queue(options), Taskhooks(options)
    # The day after the simulated week, ticking on from where it stopped (a gap would make
    # each job catch up once) up to the pair's slot, 2027-03-08T12:15.
    day = WEEK + 7 * 96 * SLOT
    slot = day + 49 * SLOT
    timer(host, repos, day + datetime.timedelta(seconds=20), 49)
    before = len(fires_of(hooks, "fenix/pair-a"))
    repos.fail("503")
    try:
        out = timer(host, repos, slot + datetime.timedelta(seconds=20))
    finally:
        repos.recover()
    assert "cron projects 0 read, 2 failed" in out and "retrying 3" in out, out
    status = taskhooks.getCronProject("fenix")["status"]
    assert "HTTP 503" in status["error"], status
    # Back at the next tick, run twice at once (overlapping ticks): the missed slot's
    # tasks are created then, once.
    procs = [timer_process(host, repos, slot + SLOT + datetime.timedelta(seconds=20)) for _ in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    fires = fires_of(hooks, "fenix/pair-a")
    assert len(fires) == before + 1, fires[:3]
    created, failed = fired_slots(hooks, queue, "fenix", "pair-a")
    assert iso(slot) in created and created.count(iso(slot)) == 1 and failed == []
    assert "error" not in taskhooks.getCronProject("fenix")["status"]


def test_a_job_bound_to_an_exchange_fires_per_message(repos, rabbit):
    """The project binds a job to an exchange: the relay (the component, and `POST /relay`)
    fires that job per message, its task made from the repository, the message its input."""
    from test_pulse import pulse_env
    env = {**cron_env(repos), **pulse_env(rabbit)}
    h = RunningHost(env)
    try:
        options = {"rootUrl": h.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}
        auth, hooks, queue, taskhooks = taskcluster.Auth(options), taskcluster.Hooks(options), taskcluster.Queue(options), Taskhooks(options)
        auth.createRole(f"repo:{repos.host}/mozilla-central:cron:*", {"description": "cron jobs", "scopes": ["queue:create-task:*", "queue:scheduler-id:*"]})
        exchange = "exchange/cron-test/v1/release"
        rabbit.api.declare_exchange(exchange)
        taskhooks.putCronProject("mozilla-central", {
            "repository": {"url": repos.central, "type": "hg", "level": "3"},
            "bindings": {"release": [{"exchange": exchange, "routingKeyPattern": "release.#"}]},
        })

        def component(name):
            return run_component(h, env, name)

        component("timer")  # the job's hook, with the project's binding
        assert hooks.hook("cron", "mozilla-central/release")["bindings"] == [{"exchange": exchange, "routingKeyPattern": "release.#"}]
        component("relay")  # its queue, bound
        assert rabbit.api.publish(exchange, "release.148", {"version": "148.0"})
        assert "fired 1" in component("relay")
        assert rabbit.api.publish(exchange, "release.149", {"version": "149.0"})
        assert taskhooks.relay()["fired"] == 1
        fires = fires_of(hooks, "mozilla-central/release")
        assert [f["firedBy"] for f in fires] == ["pulseMessage", "pulseMessage"] and all(f["result"] == "success" for f in fires), fires
        tasks = [queue.task(f["taskId"]) for f in fires]
        assert sorted(t["extra"]["input"]["version"] for t in tasks) == ["148.0", "149.0"]
        assert {t["extra"]["job"] for t in tasks} == {"release"}
    finally:
        h.stop()


def test_with_a_remote_queue_a_job_is_created_with_its_own_role_only(repos):
    """The remote Queue is asked to create each job's task with
    `authorizedScopes: ["assume:repo:<repoPath>:cron:<job>"]`, never the union."""
    from fake_taskcluster import ACCESS_TOKEN, CLIENT_ID, USERS, FakeQueue
    fake = FakeQueue()
    env = {
        **cron_env(repos),
        "SPIN_VARIABLE_TASKCLUSTER_ROOT_URL": fake.root_url,
        "SPIN_VARIABLE_ALLOWED_TASKCLUSTER_HOST": fake.root_url,
        "SPIN_VARIABLE_TASKCLUSTER_CLIENT_ID": CLIENT_ID,
        "SPIN_VARIABLE_TASKCLUSTER_ACCESS_TOKEN": ACCESS_TOKEN,
    }
    h = RunningHost(env)
    try:
        admin = "project/remote-admin"
        options = {"rootUrl": h.root_url, "maxRetries": 0, "credentials": {"clientId": admin, "accessToken": USERS[admin][0]}}
        hooks, taskhooks = taskcluster.Hooks(options), Taskhooks(options)
        taskhooks.putCronProject("fenix", {"repository": {"url": repos.fenix, "type": "git", "level": "1"}})
        # A caller without assume:repo:<repoPath>:cron:* cannot register the repository.
        reader = "project/remote-reader"
        other = Taskhooks({**options, "credentials": {"clientId": reader, "accessToken": USERS[reader][0]}})
        with pytest.raises(taskcluster.exceptions.TaskclusterRestFailure) as refused:
            other.putCronProject("fenix", {"repository": {"url": repos.fenix, "type": "git", "level": "1"}})
        assert refused.value.status_code == 403
        out = run_component(h, env, "timer", datetime.datetime(2027, 3, 22, 12, 15, 20, tzinfo=datetime.timezone.utc))
        assert "due 3 fired 3" in out, out
        scopes = sorted(r["authorizedScopes"][0] for r in fake.received if r.get("valid_signature"))
        assert scopes == [f"assume:repo:{repos.host}/org/fenix:cron:{j}" for j in ("pair-a", "pair-b", "privileged")]
        assert fake.received[0]["task"]["extra"]["rootUrl"] == fake.root_url
        assert hooks.triggerHook("cron", "fenix/by-hand", {})["status"]["taskId"]
        assert fake.received[-1]["authorizedScopes"] == [f"assume:repo:{repos.host}/org/fenix:cron:by-hand"]
    finally:
        h.stop()
        fake.stop()


def test_the_readmes_cron_project_example_runs_as_written(repos):
    """The README's registration snippet, with its `.cron.yml` and `.taskcluster.yml`
    served by the repository host, against a fresh deployment."""
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Cron projects\n"):text.index("### Where tasks go\n")]
    python = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    files = dict(re.findall(r"```yaml\n# (\S+)\n(.*?)```", section, re.S))
    assert sorted(files) == [".cron.yml", ".taskcluster.yml"]
    url = repos.add("git", "mozilla-mobile/fenix", "main", files)
    h = RunningHost(cron_env(repos))
    try:
        env = dict(os.environ, TASKCLUSTER_ROOT_URL=h.root_url, TASKCLUSTER_CLIENT_ID=ROOT_CLIENT_ID, TASKCLUSTER_ACCESS_TOKEN=ROOT_ACCESS_TOKEN)
        done = subprocess.run([sys.executable, "-c", python.replace("https://github.com/mozilla-mobile/fenix", url)], env=env, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["nightly Decision Task for cron job nightly"]
    finally:
        h.stop()


def test_failures_reach_the_projects_owner(repos):
    """With an `owner`, a job whose role lacks a scope and a project whose repository does
    not answer are reported to it as failed fires are (`error_webhook_url`)."""
    from test_failure_reports import Receiver
    receiver = Receiver()
    env = {**cron_env(repos), "SPIN_VARIABLE_ERROR_WEBHOOK_URL": receiver.url, "SPIN_VARIABLE_ALLOWED_WEBHOOK_HOST": receiver.url.rsplit("/", 1)[0]}
    h = RunningHost(env)
    try:
        options = {"rootUrl": h.root_url, "credentials": {"clientId": ROOT_CLIENT_ID, "accessToken": ROOT_ACCESS_TOKEN}, "maxRetries": 0}
        taskcluster.Auth(options).createRole(f"repo:{repos.host}/org/fenix:cron:*", {"description": "", "scopes": ["queue:create-task:*", "queue:scheduler-id:*"]})
        Taskhooks(options).putCronProject("fenix", {"repository": {"url": repos.fenix, "type": "git", "level": "3"}, "owner": "release@example.com"})

        def tick(at):
            return run_component(h, env, "timer", at)

        # The pair's slot: pair-a and pair-b are created, privileged fails alone.
        assert "due 3 fired 2 declined 0 failed 1" in tick(datetime.datetime(2027, 4, 5, 12, 15, 20, tzinfo=datetime.timezone.utc))
        assert [(r["hookGroupId"], r["hookId"], r["owner"]) for r in receiver.reports] == [("cron", "fenix/privileged", "release@example.com")], receiver.reports
        assert "queue:route:index.secret.fenix" in json.dumps(receiver.reports[0])
        repos.fail("reset")
        try:
            tick(datetime.datetime(2027, 4, 5, 12, 30, 20, tzinfo=datetime.timezone.utc))
        finally:
            repos.recover()
        assert [r["hookId"] for r in receiver.reports] == ["fenix/privileged", "fenix"], receiver.reports
        assert "cron project `fenix`" in receiver.reports[1]["error"]
    finally:
        h.stop()
        receiver.server.shutdown()
