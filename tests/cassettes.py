"""Recorded HTTP exchanges (VCR.py cassettes from tweepy's and Mastodon.py's own test suites,
tests/data/, see its README), replayed over loopback by the fake networks' /doc/ route."""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from liveblog.demo.fakes import FakeNetworks

DATA = Path(__file__).parent / "data"


@dataclass(frozen=True)
class Exchange:
    method: str
    url: str
    status: int
    headers: dict[str, str]  # the first value of each, lower-case names
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def load(name: str) -> list[Exchange]:
    """The exchanges of tests/data/<name> in recorded order."""
    recorded = yaml.safe_load((DATA / name).read_text())
    out = []
    for i in recorded["interactions"]:
        body = i["response"]["body"]["string"]
        body = body.encode() if isinstance(body, str) else body
        headers = {
            k.lower(): " ".join(v) if k.lower() == "link" else v[0]
            for k, v in i["response"]["headers"].items()
        }
        if headers.pop("content-encoding", "") == "gzip" and body[:2] == b"\x1f\x8b":  # recorded as sent
            body = gzip.decompress(body)
        out.append(
            Exchange(
                i["request"]["method"],
                i["request"]["uri"],
                int(i["response"]["status"]["code"]),
                headers,
                body,
            )
        )
    return out


def replay(fake: FakeNetworks, exchanges: list[Exchange], prefix: str) -> str:
    """Serve each recorded GET at fake.base_url/doc/<prefix><path>?<query>, its Link header moved
    to the same place; returns the base URL standing for the recorded host."""
    base = f"{fake.base_url}/doc/{prefix}"
    for ex in exchanges:
        if ex.method != "GET":
            continue
        parts = urlsplit(ex.url)
        origin = f"{parts.scheme}://{parts.netloc}"
        headers = {
            k: v.replace(origin, base) if k == "link" else v
            for k, v in ex.headers.items()
            if k
            in (
                "content-type",
                "link",
                "x-ratelimit-limit",
                "x-ratelimit-remaining",
                "x-ratelimit-reset",
                "x-rate-limit-limit",
                "x-rate-limit-remaining",
                "x-rate-limit-reset",
            )
        }
        key = prefix + parts.path + (f"?{parts.query}" if parts.query else "")
        fake.documents[key] = (ex.body, headers)
    return base
