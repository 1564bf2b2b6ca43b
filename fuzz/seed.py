#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/) from the conformance
cases and the mail corpus in ../shared: every request body of a case, by
format, and every message of the mail corpus. Run once; the corpora are
checked in (a fuzz run adds what it finds to them)."""
import base64
import hashlib
import json
import pathlib
import re
import sys

here = pathlib.Path(__file__).resolve().parent
shared = here.parent.parent / "shared"
corpus = here / "corpus"


def put(target, data):
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    d = corpus / target
    d.mkdir(parents=True, exist_ok=True)
    (d / hashlib.sha1(data).hexdigest()).write_bytes(data)


def requests(case):
    if "request" in case:
        yield case["request"]
    for step in case.get("steps", []):
        if isinstance(step, dict) and "request" in step:
            yield step["request"]


def body_of(r):
    if "json" in r:
        return json.dumps(r["json"])
    if "body_lines" in r:
        eol = "\r\n" if r.get("eol") == "crlf" else "\n"
        return eol.join(r["body_lines"])
    if "body" in r and isinstance(r["body"], str):
        if r.get("encoding") == "base64":
            return base64.b64decode(r["body"])
        return r["body"]
    return None


for f in sorted((shared / "conformance" / "cases").glob("*/*.json")):
    for r in requests(json.loads(f.read_text())):
        body = body_of(r)
        if body is None:
            continue
        path = r.get("path", "")
        text = body.replace("{{unique}}", "seed") if isinstance(body, str) else body
        for fmt in ("json", "xml", "email"):
            if path.endswith("tickets." + fmt):
                put(fmt, text)
        if isinstance(text, str):
            for url in re.findall(r'data:[^"\s<]*', text):
                put("data_url", url)
        # The HTTP target takes arbitrary bytes; its seeds are bodies too.
        put("http", b"\x00\x00" + (text if isinstance(text, bytes) else text.encode()))

for m in sorted((shared / "mail-corpus" / "messages").iterdir()):
    put("email", m.read_bytes())

# TNEF: the smallest valid stream headers libtnef-style readers accept.
put("tnef", b"\x78\x9f\x3e\x22\x01\x00\x01\x06\x90\x08\x00\x04\x00\x00\x00\x00\x00\x01\x00\x01\x00")
print({d.name: len(list(d.iterdir())) for d in sorted(corpus.iterdir())}, file=sys.stderr)
