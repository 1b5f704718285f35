"""`taskhooks apply`: hooks and roles as files, against a running host through the public
API, starting from the README's example files (examples/hooks/, copied): the plan of an
empty deployment, `--apply`, a change shown as a diff, removals only within the managed
prefixes, a second run with nothing to do, and a bad file that stops everything.

The tests run in order on one deployment and one copy of the files: each starts from what
the one before left."""

import os
import re
import shutil
import subprocess

import pytest
import taskcluster

from conftest import REPO, ROOT_ACCESS_TOKEN, ROOT_CLIENT_ID, host_binary

EXAMPLES = REPO / "examples" / "hooks"
HOOK = ("project-releng", "nightly")
ROLE = "hook-id:project-releng/nightly"

# Declared in a second file, removed again by the removal test.
WEEKLY = """\
roles:
  - roleId: hook-id:project-releng/weekly
    description: what project-releng/weekly may create
    scopes: [queue:create-task:highest:proj-releng/ci]
hooks:
  - hookGroupId: project-releng
    hookId: weekly
    metadata: {name: weekly, description: every Sunday, owner: releng@example.com}
    schedule: ["0 0 3 * * 0"]
    task: {taskQueueId: proj-releng/ci, payload: {}}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """The example directory, copied so the tests can edit it."""
    directory = tmp_path_factory.mktemp("hooks") / "hooks"
    shutil.copytree(EXAMPLES, directory)
    return directory


@pytest.fixture(scope="module")
def env(host):
    return dict(os.environ, TASKCLUSTER_ROOT_URL=host.root_url, TASKCLUSTER_CLIENT_ID=ROOT_CLIENT_ID,
                TASKCLUSTER_ACCESS_TOKEN=ROOT_ACCESS_TOKEN)


@pytest.fixture(scope="module")
def clients(root_options):
    return taskcluster.Hooks(root_options), taskcluster.Auth(root_options)


def apply(env, path, *flags):
    return subprocess.run([host_binary(), "apply", str(path), *flags], env=env, capture_output=True, text=True, timeout=120)


def hook_ids(hooks, group):
    try:
        return sorted(h["hookId"] for h in hooks.listHooks(group)["hooks"])
    except taskcluster.TaskclusterRestFailure:
        return []


def role_ids(auth):
    return sorted(r["roleId"] for r in auth.listRoles())


def test_the_readme_shows_the_example_file_as_it_is():
    text = (REPO / "README.md").read_text()
    section = text[text.index("### Hooks as files: `taskhooks apply`"):]
    shown = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    assert shown == (EXAMPLES / "nightly.yml").read_text()


def test_an_empty_deployment_plans_creates_and_apply_makes_them(env, files, clients):
    hooks, auth = clients
    plan = apply(env, files)
    assert plan.returncode == 0, plan.stderr
    lines = plan.stdout.splitlines()
    assert lines[0] == f"+ role {ROLE}", plan.stdout
    assert f"+ hook {HOOK[0]}/{HOOK[1]}" in lines, plan.stdout
    assert lines.index(f"+ role {ROLE}") < lines.index(f"+ hook {HOOK[0]}/{HOOK[1]}"), "roles first"
    assert '    +  "schedule": [' in lines, plan.stdout
    assert "2 to create, 0 to change, 0 to remove" in lines, plan.stdout
    assert hook_ids(hooks, HOOK[0]) == [] and ROLE not in role_ids(auth), "a plan changes nothing"
    assert apply(env, files, "--check").returncode == 1, "--check: something to do"

    done = apply(env, files, "--apply")
    assert done.returncode == 0, done.stderr
    assert f"created role {ROLE}\ncreated hook {HOOK[0]}/{HOOK[1]}\n" in done.stdout, done.stdout
    assert done.stdout.endswith("applied: 2 created, 0 changed, 0 removed\n"), done.stdout
    hook = hooks.hook(*HOOK)
    assert hook["schedule"] == ["0 0 3 * * *"] and hook["metadata"]["owner"] == "releng@example.com", hook
    assert hook["task"]["payload"] == {"command": ["./build.sh", "--nightly"]}, hook
    assert sorted(auth.role(ROLE)["scopes"]) == ["queue:create-task:highest:proj-releng/ci",
                                                 "queue:create-task:project:none", "queue:scheduler-id:-"]


def test_a_changed_hook_and_role_show_a_diff_and_apply_updates_them(env, files, clients):
    hooks, auth = clients
    example = files / "nightly.yml"
    text = example.read_text()
    for old, new in [('schedule: ["0 0 3 * * *"]', 'schedule: ["0 30 2 * * *"]'),
                     ("      - queue:scheduler-id:-\n", "      - queue:scheduler-id:-\n      - queue:route:index.releng.*\n")]:
        assert old in text, old
        text = text.replace(old, new)
    example.write_text(text)

    plan = apply(env, files)
    assert plan.returncode == 0, plan.stderr
    out = plan.stdout
    assert f"~ role {ROLE}\n    --- deployed\n    +++ files\n    @@ " in out, out
    assert '\n    +    "queue:route:index.releng.*",\n' in out, out
    assert f"~ hook {HOOK[0]}/{HOOK[1]}\n" in out, out
    assert '\n    -    "0 0 3 * * *"\n    +    "0 30 2 * * *"\n' in out, out
    assert "0 to create, 2 to change, 0 to remove" in out, out

    done = apply(env, files, "--apply")
    assert done.returncode == 0, done.stderr
    assert f"updated role {ROLE}\nupdated hook {HOOK[0]}/{HOOK[1]}\n" in done.stdout, done.stdout
    assert hooks.hook(*HOOK)["schedule"] == ["0 30 2 * * *"]
    assert "queue:route:index.releng.*" in auth.role(ROLE)["scopes"]


def test_removals_stay_within_the_managed_prefixes(env, files, clients):
    hooks, auth = clients
    (files / "weekly.yml").write_text(WEEKLY)
    assert apply(env, files, "--apply").returncode == 0
    assert hook_ids(hooks, "project-releng") == ["nightly", "weekly"]
    # Made by hand, outside the prefixes the files manage: never the files' business.
    auth.createRole("hook-id:other-group/manual", {"description": "by hand", "scopes": ["queue:create-task:highest:proj/ci"]})
    hooks.createHook("other-group", "manual", {
        "metadata": {"name": "manual", "description": "by hand", "owner": "me@example.com"},
        "task": {"taskQueueId": "proj/ci", "payload": {}},
    })

    (files / "weekly.yml").unlink()
    plan = apply(env, files)
    assert plan.returncode == 0, plan.stderr
    assert plan.stdout.startswith("- hook project-releng/weekly\n- role hook-id:project-releng/weekly\n\n"
                                  "0 to create, 0 to change, 2 to remove\n"), plan.stdout
    assert "other-group" not in plan.stdout
    done = apply(env, files, "--apply")
    assert done.returncode == 0, done.stderr
    assert "removed hook project-releng/weekly\nremoved role hook-id:project-releng/weekly\n" in done.stdout, done.stdout
    assert hook_ids(hooks, "project-releng") == ["nightly"]
    assert "hook-id:project-releng/weekly" not in role_ids(auth)
    assert hook_ids(hooks, "other-group") == ["manual"]
    assert "hook-id:other-group/manual" in role_ids(auth)


def test_a_second_run_has_nothing_to_do(env, files):
    for flags in [(), ("--check",), ("--apply",)]:
        run = apply(env, files, *flags)
        assert (run.returncode, run.stdout) == (0, "nothing to do\n"), (flags, run.stdout, run.stderr)


def test_a_bad_file_fails_clearly_and_applies_nothing(env, files, clients):
    hooks, _ = clients
    example = files / "nightly.yml"
    good = example.read_text()
    example.write_text(good.replace("name: nightly build\n", "name: nightly build, renamed\n"))
    bad = files / "more" / "broken.yml"
    bad.parent.mkdir()
    bad.write_text("hooks:\n  - hookGroupId: project-releng\n    hookId: broken\n    metadata: {name: b, description: d, owner: nobody}\n    task: {}\n")
    (files / "more" / "copy.json").write_text('{"managed": {"hooks": ["project-releng/"]}, "roles": [{"roleId": "%s", "description": "d", "scopes": []}]}' % ROLE)
    (files / "notes.txt").write_text("not a declaration: ignored\n")

    for flags in [(), ("--apply",)]:
        run = apply(env, files, *flags)
        assert run.returncode == 2, (run.stdout, run.stderr)
        assert run.stdout == "", "no plan"
        err = run.stderr
        assert f"{files}/more/broken.yml: hooks[0] (project-releng/broken): metadata.owner must be an e-mail address" in err, err
        assert f"role {ROLE} is declared twice: in {files}/more/copy.json and in {files}/nightly.yml" in err, err
        assert "nothing was applied" in err and ROOT_ACCESS_TOKEN not in err, err
    assert hooks.hook(*HOOK)["metadata"]["name"] == "nightly build", "the good file's change was not applied"

    # Without the bad files the change goes through, as the plan said.
    shutil.rmtree(files / "more")
    assert apply(env, files, "--apply").returncode == 0
    assert hooks.hook(*HOOK)["metadata"]["name"] == "nightly build, renamed"


def test_an_api_error_stops_the_run_and_names_the_call(env, files, clients):
    hooks, _ = clients
    example = files / "nightly.yml"
    example.write_text(example.read_text().replace('schedule: ["0 30 2 * * *"]', 'schedule: ["H 30 2 * * *"]'))
    run = apply(env, files, "--apply")
    assert run.returncode == 2, run.stdout
    assert "stopped after 0 of 1 changes; the rest were not applied: updateHook project-releng/nightly: HTTP 400 InputError:" in run.stderr, run.stderr
    assert hooks.hook(*HOOK)["schedule"] == ["0 30 2 * * *"]


def test_planning_needs_only_the_managed_groups_list_scope(env, files, clients):
    """A client with only `hooks:list-hooks:project-releng` plans: a prefix that names its
    group is listed with `listHooks` alone; a wrong token fails without showing it."""
    _, auth = clients
    client = auth.createClient("apply/planner", {"description": "plans", "expires": taskcluster.fromNowJSON("1 hour"),
                                                 "scopes": ["hooks:list-hooks:project-releng"]})
    limited = dict(env, TASKCLUSTER_CLIENT_ID="apply/planner", TASKCLUSTER_ACCESS_TOKEN=client["accessToken"])
    run = apply(limited, files)
    assert run.returncode == 0, run.stderr
    # The file the test before left (its schedule the deployment refused) is one change.
    assert "\n0 to create, 1 to change, 0 to remove\n" in run.stdout, run.stdout
    wrong = dict(limited, TASKCLUSTER_ACCESS_TOKEN="not-" + client["accessToken"])
    run = apply(wrong, files)
    assert run.returncode == 2 and "401" in run.stderr, run.stderr
    assert client["accessToken"] not in run.stderr + run.stdout
