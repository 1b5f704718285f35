"""Generates hawk_vectors.json with mohawk, the Hawk implementation the official Taskcluster
Python client uses, so the Rust Hawk code is checked against an independent implementation.
Temporary credentials come from the official client's createTemporaryCredentials.
Run: pip install mohawk==1.1.0 taskcluster==113.2.0 && python3 make_hawk_vectors.py > hawk_vectors.json
"""
import json
from mohawk import Sender
from mohawk.bewit import get_bewit
from mohawk.util import calculate_payload_hash, parse_authorization_header

cases = [
    dict(method="GET", url="https://tc.example.com/api/hooks/v1/hooks/g/h%2Fx", content="", content_type="",
         ext=None, ts=1795436100, nonce="abc123"),
    dict(method="PUT", url="http://127.0.0.1:3000/api/hooks/v1/hooks/my-group/nightly%2Fbuild?x=1", 
         content='{"metadata": {"name": "n"}}', content_type="application/json", ext=None, ts=1795436101, nonce="n0nc3"),
    dict(method="POST", url="https://tc.example.com:8443/api/hooks/v1/hooks/g/h/trigger",
         content="{}", content_type="application/json; charset=utf-8",
         ext="eyJhdXRob3JpemVkU2NvcGVzIjogWyJhIl19", ts=1795436102, nonce="x"),
]
credentials = {"id": "static/taskhooks/root", "key": "c2VjcmV0LWFjY2Vzcy10b2tlbg", "algorithm": "sha256"}
out = {"credentials": credentials, "requests": [], "payloadHashes": [], "bewits": []}
for c in cases:
    kwargs = dict(always_hash_content=bool(c["content"]), _timestamp=c["ts"], nonce=c["nonce"])
    if c["ext"]:
        kwargs["ext"] = c["ext"]
    sender = Sender(credentials, c["url"], c["method"], content=c["content"], content_type=c["content_type"], **kwargs)
    header = sender.request_header
    out["requests"].append(dict(c, header=header, parsed=parse_authorization_header(header)))
for content, ctype in [("", ""), ("{}", "application/json"), ('{"a": 1}', "Application/JSON; charset=utf-8")]:
    out["payloadHashes"].append({"content": content, "contentType": ctype,
                                 "hash": calculate_payload_hash(content.encode(), "sha256", ctype).decode() if isinstance(calculate_payload_hash(content.encode(), "sha256", ctype), bytes) else calculate_payload_hash(content.encode(), "sha256", ctype)})
from mohawk.base import Resource
for url, exp in [("https://tc.example.com/api/queue/v1/task/abc/artifacts/public%2Flog.txt", 1795440000)]:
    res = Resource(url=url, method="GET", credentials=credentials, timestamp=exp, nonce="")
    out["bewits"].append({"url": url, "exp": exp, "bewit": get_bewit(res)})
import base64, datetime
import taskcluster
from taskcluster import utils as tcutils
start = datetime.datetime(2026, 11, 23, 12, 0, 0)
expiry = datetime.datetime(2026, 11, 24, 12, 0, 0)
out["temporaryCredentials"] = []
for name in [None, "project/ci/temp"]:
    creds = taskcluster.createTemporaryCredentials("static/issuer", "issuer-access-token-0123456789abcdef", start, expiry,
                                                   ["hooks:trigger-hook:g/*", "queue:create-task:*"], name=name)
    creds = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in creds.items()}
    ext = {"certificate": json.loads(creds["certificate"]), "authorizedScopes": ["hooks:trigger-hook:g/h"]}
    # As the Python client encodes ext: URL-safe base64 of the JSON.
    ext_b64 = tcutils.makeB64UrlSafe(tcutils.encodeStringForB64Header(tcutils.dumpJson(ext)))
    ext_b64 = ext_b64.decode() if isinstance(ext_b64, bytes) else ext_b64
    out["temporaryCredentials"].append({"issuerClientId": "static/issuer",
        "issuerAccessToken": "issuer-access-token-0123456789abcdef", "name": name, "result": creds, "extBase64": ext_b64})
print(json.dumps(out, indent=1))
