"""The daily pass's cost against what expires, not what the store holds: two stores with
the same million keys of other history, one with 10,000 fires expiring on the pruned day
and one with 100,000, pruned by `taskhooks cron timer` (its own `in N ms`).

    python3 benches/load/daily.py [--binary PATH] [--history 1000000] [--sizes 10000,100000]

The expiring fires and their bucket entries are written straight into the host's SQLite
store in the layout of `shared/src/layout.rs`.
"""

import argparse
import json
import os
import pathlib
import re
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tests" / "python"))
sys.path.insert(0, str(REPO / "benches" / "load"))
from conftest import ROOT_ACCESS_TOKEN, SECRETS_KEY, host_binary  # noqa: E402
from history import add_history  # noqa: E402

DAY = 86400


def timer(state, at):
    env = dict(os.environ, SPIN_VARIABLE_ROOT_ACCESS_TOKEN=ROOT_ACCESS_TOKEN, SPIN_VARIABLE_SECRETS_KEY=SECRETS_KEY)
    return subprocess.run([host_binary(), "cron", "timer", "--at", str(at), "--state-dir", state],
                          cwd=REPO, env=env, capture_output=True, text=True, check=True).stdout


def expiring(db_path, n, day):
    """`n` year-old fires of 10 hooks, all in the expiry bucket of `day`."""
    db = sqlite3.connect(db_path)
    fire = json.dumps({"hookGroupId": "old", "hookId": "h", "firedBy": "schedule", "taskId": "fN1SmgV0T8WXX3LhKs2Gyw",
                       "taskCreateTime": "2020-01-01T00:00:00.000Z", "result": "success", "taskState": "unknown", "error": ""}).encode()
    rows = []
    per_hook = n // 10
    for h in range(10):
        for s in range(1, per_hook + 1):
            rows.append(("default", f"fire/old/h{h}/{s:020}", fire))
            entry = {"kind": "fire", "hookGroupId": "old", "hookId": f"h{h}", "seq": s}
            rows.append(("default", f"expiry/{day}/{h * per_hook + s}", json.dumps(entry).encode()))
        rows.append(("default", f"fireseq/old/h{h}", struct.pack("<q", per_hook)))
    rows.append(("default", f"expiryseq/{day}", struct.pack("<q", n)))
    db.executemany("INSERT OR REPLACE INTO spin_key_value (store, key, value) VALUES (?, ?, ?)", rows)
    db.commit()
    db.close()


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--binary")
    p.add_argument("--history", type=int, default=1_000_000)
    p.add_argument("--sizes", default="10000,100000")
    a = p.parse_args()
    if a.binary:
        os.environ["TASKHOOKS_BIN"] = a.binary
    start = (int(time.time()) // DAY) * DAY + 3600
    rows = []
    for n in [int(x) for x in a.sizes.split(",")]:
        state = tempfile.mkdtemp(prefix="taskhooks-daily-")
        timer(state, start)  # sets the store up and its expiry cursor to that day
        db = f"{state}/sqlite_key_value.db"
        total = add_history(db, a.history)
        day = time.strftime("%Y-%m-%d", time.gmtime(start + DAY))
        expiring(db, n, day)
        out = timer(state, start + 2 * DAY)
        m = re.search(r"daily pass: (\d+) expiry buckets, (\d+) entries: pruned (\d+) fires.* in (\d+) ms", out)
        left = sqlite3.connect(db).execute("SELECT count(*) FROM spin_key_value WHERE key LIKE 'fire/old/%'").fetchone()[0]
        rows.append((f"{total + 2 * n:,}", f"{n:,}", m.group(2), m.group(3), m.group(4), str(left)))
    print("| keys in the store | expiring that day | entries read | fires pruned | daily pass ms | left |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
