"""taskhooks' extensions (`/api/taskhooks/v1/`) as an official-client class: the
`taskcluster` package builds API classes from a reference, so the extensions are called
with the same Hawk signing, retries and errors as Hooks itself."""

import taskcluster.client


def _entry(name, method, route, args=(), input=False):
    entry = {"type": "function", "name": name, "method": method, "route": route, "args": list(args), "stability": "experimental"}
    if input:
        entry["input"] = "v1/any.json#"
    return entry


REFERENCE = {
    "serviceName": "taskhooks",
    "apiVersion": "v1",
    "entries": [
        _entry("relay", "post", "/relay"),
        _entry("tick", "post", "/tick"),
        _entry("pulseStatus", "get", "/hooks/<hookGroupId>/<hookId>/pulse", ["hookGroupId", "hookId"]),
        _entry("dryRun", "post", "/hooks/<hookGroupId>/<hookId>/dry-run", ["hookGroupId", "hookId"], input=True),
        _entry("nextFires", "get", "/hooks/<hookGroupId>/<hookId>/next-fires", ["hookGroupId", "hookId"]),
        _entry("auditChanges", "get", "/audit/<entityType>/<entityId>", ["entityType", "entityId"]),
        _entry("listCronProjects", "get", "/cron-projects"),
        _entry("getCronProject", "get", "/cron-projects/<project>", ["project"]),
        _entry("putCronProject", "put", "/cron-projects/<project>", ["project"], input=True),
        _entry("deleteCronProject", "delete", "/cron-projects/<project>", ["project"]),
        _entry("dryRunCronProject", "post", "/cron-projects/<project>/dry-run", ["project"], input=True),
    ],
}

Taskhooks = taskcluster.client.createApiClient("Taskhooks", {"reference": REFERENCE})
