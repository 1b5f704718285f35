"""The served API references, as Taskcluster tools discover a deployment: the manifest
(`<rootUrl>/references/manifest.json`, `manifest-v3`), one `api-reference-v0` reference per
service, and every schema they name (`<rootUrl>/schemas/...`), each valid against the
schema it declares. A client class is then generated from the served `hooks` and
`taskhooks` references with the official Python client's own mechanism,
`taskcluster.client.createApiClient(name, {"reference": reference})`, and drives real calls;
and the served `hooks` reference must declare what upstream's does, as the official clients
bundle it."""

import copy
import datetime
import json
import shutil
import subprocess
from urllib.parse import urldefrag, urljoin

import pytest
import requests
import taskcluster
import taskcluster.client
from jsonschema.validators import validator_for
from referencing import Registry
from referencing.jsonschema import specification_with
from taskcluster.exceptions import TaskclusterRestFailure

from conftest import REPO

# The services a deployment of taskhooks describes (more may be listed, e.g. `github`).
SERVICES = {"hooks", "auth", "queue", "taskhooks"}

# Fields of a served `hooks` entry that differ from upstream's on purpose, by entry name:
# {"entryName": {"field", ...}}. None today; an undeclared difference fails, and so does a
# declared one that is gone, so this stays the exact list.
DECLARED_HOOKS_DIFFERENCES: dict[str, set[str]] = {}


class Served:
    """Documents fetched from the host, and a JSON-schema registry that retrieves the
    served ones by URL, so `$ref`s across files resolve as a client would resolve them."""

    def __init__(self, root_url):
        self.root = root_url.rstrip("/")
        self.cache = {}
        self.registry = Registry(retrieve=self._retrieve)

    def get(self, url):
        url = urldefrag(url).url
        if url not in self.cache:
            assert url.startswith(self.root + "/"), f"{url} is not under the rootUrl {self.root}"
            resp = requests.get(url, timeout=30)
            assert resp.status_code == 200, f"GET {url}: {resp.status_code} {resp.text[:300]}"
            assert resp.headers.get("content-type", "").startswith("application/json"), (url, resp.headers)
            self.cache[url] = resp.json()
        return self.cache[url]

    def dialect(self, schema, where, seen=()):
        """The JSON Schema draft a document is written in, following its `$schema`: a
        json-schema.org draft, or a served metaschema (as upstream's
        `/schemas/common/metaschema.json#`), itself checked and followed to its draft.
        Answers the validator class and the draft's URI."""
        uri = schema.get("$schema") if isinstance(schema, dict) else None
        assert uri, f"{where} has no $schema"
        cls = validator_for(schema, default=None)
        if cls is not None:
            return cls, uri
        assert uri.startswith(self.root + "/schemas/"), f"{where}: $schema {uri} is neither a JSON Schema draft nor served here"
        assert uri not in seen, f"{where}: $schema cycle {seen}"
        meta = self.get(uri)
        meta_cls, draft = self.dialect(meta, uri, seen + (uri,))
        meta_cls.check_schema(meta)
        errors = sorted(meta_cls({"$ref": uri}, registry=self.registry).iter_errors(schema), key=str)
        assert not errors, f"{where} is not valid against its $schema {uri}: " + "; ".join(e.message for e in errors[:5])
        return validator_for({"$schema": draft}), draft

    def _retrieve(self, uri):
        contents = self.get(uri)
        _, draft = self.dialect(contents, uri)
        return specification_with(draft).create_resource(contents)

    def validator(self, url):
        """A validator for the served schema at `url`, in the draft its `$schema` says."""
        cls, _ = self.dialect(self.get(url), url)
        return cls({"$ref": url}, registry=self.registry)

    def validate(self, url, value):
        errors = sorted(self.validator(url).iter_errors(value), key=str)
        assert not errors, f"not valid against {url}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])
        return value

    def check_schema(self, url):
        """`url` is served, is a valid JSON schema of the draft it declares, names itself
        (if it does) by that URL, and every `$ref` in it resolves."""
        schema = self.get(url)
        cls, _ = self.dialect(schema, url)
        cls.check_schema(schema)
        base = urldefrag(url).url
        if "$id" in schema:
            assert urldefrag(schema["$id"]).url == base, f"{url} has $id {schema['$id']}"
        resolver = self.registry.resolver(base_uri=base)
        for ref in _refs(schema):
            resolver.lookup(ref)


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            elif key not in ("const", "enum", "default", "examples"):
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


@pytest.fixture(scope="module")
def served(host):
    return Served(host.root_url)


@pytest.fixture(scope="module")
def manifest(served):
    return served.get(f"{served.root}/references/manifest.json")


@pytest.fixture(scope="module")
def references(served, manifest):
    """Every listed reference, by service name."""
    out = {}
    for url in manifest["references"]:
        reference = served.get(url)
        out[reference["serviceName"]] = reference
    return out


def generated(name, reference):
    """A client class built from a served reference, by the official client's mechanism
    (which adds `apiVersion` to the dict it is given, hence the copy)."""
    return taskcluster.client.createApiClient(name, {"reference": copy.deepcopy(reference)})


def schema_url(served, reference, value):
    """An entry's `input`/`output`: relative to `<rootUrl>/schemas/<serviceName>/`."""
    return urljoin(f"{served.root}/schemas/{reference['serviceName']}/", value)


def upstream_js_references():
    """Upstream's references as the official JavaScript client bundles them (pinned in
    tests/js/package-lock.json); the Python client's copy (`funcinfo`) omits scopes."""
    node = shutil.which("node")
    assert node, "node is not installed (scripts/test installs Debian's nodejs and npm)"
    js = REPO / "tests" / "js"
    assert (js / "node_modules" / "taskcluster-client").is_dir(), (
        "tests/js's packages are not installed: run `npm ci --prefix tests/js`"
    )
    script = ("import apis from 'taskcluster-client/src/apis.js';"
              "process.stdout.write(JSON.stringify(Object.fromEntries("
              "Object.values(apis).filter(a => a.reference.$schema.includes('/api-reference-')).map(a => [a.reference.serviceName, a.reference]))));")
    done = subprocess.run([node, "--input-type=module", "-e", script], cwd=js, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_the_manifest_lists_a_reference_per_service(served, manifest):
    assert manifest["$schema"] == f"{served.root}/schemas/common/manifest-v3.json#", manifest["$schema"]
    urls = manifest["references"]
    assert isinstance(urls, list) and len(urls) == len(set(urls)), urls
    for url in urls:
        assert url.startswith(f"{served.root}/references/") and url.endswith("/v1/api.json"), url
    listed = {url[len(f"{served.root}/references/"):-len("/v1/api.json")] for url in urls}
    assert listed >= SERVICES, f"missing references: {SERVICES - listed}"


def test_the_manifest_is_valid_against_its_served_schema(served, manifest):
    served.check_schema(manifest["$schema"])
    # Upstream's manifest-v3 allows no properties but `references`, yet upstream's
    # manifest carries `$schema` (its references library writes it): the rest is checked.
    served.validate(manifest["$schema"], {k: v for k, v in manifest.items() if k != "$schema"})


def test_every_reference_is_a_valid_api_reference(served, manifest, references):
    schema = f"{served.root}/schemas/common/api-reference-v0.json#"
    served.check_schema(schema)
    assert set(references) >= SERVICES, set(references)
    for url in manifest["references"]:
        reference = served.get(url)
        service = url[len(f"{served.root}/references/"):-len("/v1/api.json")]
        assert reference["$schema"] == schema, (url, reference["$schema"])
        served.validate(schema, reference)
        assert reference["serviceName"] == service and reference["apiVersion"] == "v1", (url, reference["serviceName"])
        entries = [e for e in reference["entries"] if e["type"] == "function"]
        assert entries, url
        names = [e["name"] for e in entries]
        assert len(names) == len(set(names)), f"{service}: duplicate names {names}"
        for e in entries:
            in_route = [part[1:-1] for part in e["route"].split("/") if part.startswith("<") and part.endswith(">")]
            assert e["args"] == in_route, (service, e["name"], e["route"], e["args"])


def test_every_input_and_output_schema_is_served_and_valid(served, references):
    checked = set()
    for reference in references.values():
        for e in reference["entries"]:
            for field in ("input", "output"):
                if field not in e or e[field] == "blob":
                    continue
                url = schema_url(served, reference, e[field])
                assert url.startswith(f"{served.root}/schemas/{reference['serviceName']}/v1/"), (reference["serviceName"], e["name"], url)
                if url not in checked:
                    served.check_schema(url)
                    checked.add(url)
    assert checked


def _entry_view(e, fields):
    out = {}
    for field in fields:
        if field == "query":
            out[field] = sorted(e.get("query") or [])
        elif field in e:
            out[field] = e[field]
    return out


def test_the_hooks_reference_is_upstreams(references):
    ours = {e["name"]: e for e in references["hooks"]["entries"] if e["type"] == "function"}
    # As the Python client bundles upstream's reference (without scopes) ...
    bundled = taskcluster.Hooks.funcinfo
    # ... and the JavaScript client, scopes included.
    js = {e["name"]: e for e in upstream_js_references()["hooks"]["entries"] if e["type"] == "function"}
    assert set(js) == set(bundled), "the two official clients disagree on the Hooks methods"
    assert set(ours) == set(bundled), f"only ours: {set(ours) - set(bundled)}; only upstream's: {set(bundled) - set(ours)}"
    fields = ("method", "route", "args", "query", "input", "output", "stability")
    differences = {}
    for name in sorted(bundled):
        upstream = dict(_entry_view(bundled[name], fields), **_entry_view(js[name], ("scopes",)))
        mine = _entry_view(ours[name], fields + ("scopes",))
        differ = {f for f in set(upstream) | set(mine) if upstream.get(f) != mine.get(f)}
        if differ:
            differences[name] = {f: {"upstream": upstream.get(f), "ours": mine.get(f)} for f in sorted(differ)}
    declared = {name: fields for name, fields in DECLARED_HOOKS_DIFFERENCES.items()}
    assert {n: set(d) for n, d in differences.items()} == declared, json.dumps(differences, indent=1)


def test_every_other_upstream_entry_is_declared_as_upstream_declares_it(references):
    """The auth, queue and github subsets: each served entry is upstream's method at
    upstream's route, with its arguments and query (its scopes are the subset's own)."""
    upstream = upstream_js_references()
    for service in ("auth", "queue", "github"):
        if service not in references:
            continue
        theirs = {e["name"]: e for e in upstream[service]["entries"] if e["type"] == "function"}
        for e in references[service]["entries"]:
            assert e["name"] in theirs, f"{service}.{e['name']} is not upstream's"
            fields = ("method", "route", "args", "query")
            assert _entry_view(e, fields) == _entry_view(theirs[e["name"]], fields), (service, e["name"])


@pytest.fixture(scope="module")
def clients(references, root_options, host):
    anonymous = {"rootUrl": host.root_url, "maxRetries": 0}
    Hooks, Auth, Queue = (generated(n, references[s]) for n, s in (("Hooks", "hooks"), ("Auth", "auth"), ("Queue", "queue")))
    Taskhooks = generated("Taskhooks", references["taskhooks"])
    return {
        "hooks": Hooks(root_options), "auth": Auth(root_options), "queue": Queue(root_options),
        "taskhooks": Taskhooks(root_options), "anonymous_hooks": Hooks(anonymous), "anonymous_taskhooks": Taskhooks(anonymous),
    }


def output_of(served, references, service, name, value):
    """Validates an answer against the output schema the served reference names."""
    entry = next(e for e in references[service]["entries"] if e["name"] == name)
    assert "output" in entry, f"{service}.{name} declares no output"
    return served.validate(schema_url(served, references[service], entry["output"]), value)


HOOK = {
    "metadata": {"name": "generated", "description": "from the served reference", "owner": "ops@example.com"},
    "schedule": ["0 0 3 * * *"],
    "task": {
        "$if": "firedBy != 'triggerHook' || payload.go",
        "then": {
            "taskQueueId": "refs/ci", "schedulerId": "-", "payload": {"fired": "${firedBy}"},
            "metadata": {"name": "generated", "description": "", "owner": "ops@example.com", "source": "https://example.com"},
            "deadline": {"$fromNow": "2 hours"},
        },
    },
    "triggerSchema": {"type": "object", "properties": {"go": {"type": "boolean"}}, "additionalProperties": False},
}


def test_a_client_generated_from_the_served_hooks_reference(served, references, clients):
    hooks, auth, queue, anonymous = clients["hooks"], clients["auth"], clients["queue"], clients["anonymous_hooks"]
    out = lambda name, value, service="hooks": output_of(served, references, service, name, value)  # noqa: E731
    assert anonymous.ping()["alive"] is True
    out("createRole", auth.createRole("hook-id:refs/*", {"description": "generated", "scopes": [
        "queue:create-task:highest:refs/*", "queue:create-task:project:none", "queue:scheduler-id:-"]}), "auth")

    created = out("createHook", hooks.createHook("refs", "gen/one", HOOK))
    assert created["hookGroupId"] == "refs" and created["hookId"] == "gen/one"
    assert created["task"] == HOOK["task"] and created["schedule"] == HOOK["schedule"]
    assert out("hook", hooks.hook("refs", "gen/one")) == created
    assert [h["hookId"] for h in out("listHooks", hooks.listHooks("refs"))["hooks"]] == ["gen/one"]
    assert "refs" in out("listHookGroups", hooks.listHookGroups())["groups"]

    assert out("triggerHook", hooks.triggerHook("refs", "gen/one", {"go": False})) == {}
    fired = out("triggerHook", hooks.triggerHook("refs", "gen/one", {"go": True}))
    task = out("task", queue.task(fired["taskId"]), "queue")
    assert task["payload"] == {"fired": "triggerHook"}
    token = out("getTriggerToken", hooks.getTriggerToken("refs", "gen/one"))["token"]
    by_token = out("triggerHookWithToken", anonymous.triggerHookWithToken("refs", "gen/one", token, {"go": True}))
    fires = out("listLastFires", hooks.listLastFires("refs", "gen/one", query={"limit": "10"}))["lastFires"]
    assert [f["taskId"] for f in fires] == [by_token["taskId"], fired["taskId"]]

    assert hooks.removeHook("refs", "gen/one") == {}
    with pytest.raises(TaskclusterRestFailure) as gone:
        hooks.hook("refs", "gen/one")
    assert gone.value.status_code == 404 and gone.value.body["code"] == "ResourceNotFound"


def test_a_client_generated_from_the_served_taskhooks_reference(served, references, clients):
    names = [e["name"] for e in references["taskhooks"]["entries"]]
    assert all(n.startswith("x-") for n in names), names
    assert {"x-schedulePreview", "x-nextFires"} <= set(names), names
    taskhooks, anonymous = clients["taskhooks"], clients["anonymous_taskhooks"]
    out = lambda name, value: output_of(served, references, "taskhooks", name, value)  # noqa: E731

    # `x-` names are no Python identifiers: the generated class has them all the same.
    preview = getattr(anonymous, "x-schedulePreview")
    answer = out("x-schedulePreview", preview({"schedule": ["0 0 3 * * *"], "count": 2, "from": "2026-11-23T00:00:00Z"}))
    assert answer == {"nextFires": ["2026-11-23T03:00:00.000Z", "2026-11-24T03:00:00.000Z"]}
    with pytest.raises(TaskclusterRestFailure) as bad:
        preview({"schedule": ["0 0 3 0 * *"], "count": 2})
    assert bad.value.status_code == 400 and "0 0 3 0 * *" in bad.value.body["message"], bad.value.body

    clients["hooks"].createHook("refs", "gen/scheduled", HOOK)
    next_fires = getattr(taskhooks, "x-nextFires")
    fires = out("x-nextFires", next_fires("refs", "gen/scheduled", query={"count": "3"}))["nextFires"]
    times = [datetime.datetime.fromisoformat(t.replace("Z", "+00:00")) for t in fires]
    assert len(times) == 3 and all(t.endswith("T03:00:00.000Z") for t in fires), fires
    assert times[0] > datetime.datetime.now(datetime.timezone.utc)
    assert [b - a for a, b in zip(times, times[1:])] == [datetime.timedelta(days=1)] * 2
    assert len(next_fires("refs", "gen/scheduled")["nextFires"]) == 5, "count defaults to 5"
    with pytest.raises(TaskclusterRestFailure) as refused:
        getattr(anonymous, "x-nextFires")("refs", "gen/scheduled")
    assert refused.value.status_code == 403 and refused.value.body["code"] == "InsufficientScopes"
