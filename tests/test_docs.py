"""The docs stay true: every error code and close code the server can send is documented,
and the README shows the commands CI and a newcomer use."""

from __future__ import annotations

import re
from pathlib import Path

from liveblog import errors
from liveblog.streams.protocol import CloseCode

ROOT = Path(__file__).resolve().parent.parent


def protocol_docs() -> str:
    return "\n".join(p.read_text() for p in sorted((ROOT / "docs").glob("protocol*.md")))


def error_codes_in_code() -> set[str]:
    codes: set[str] = set()
    for path in (ROOT / "liveblog").rglob("*.py"):
        text = path.read_text()
        codes.update(re.findall(r"""code\s*=\s*["']([a-z_]+)["']""", text))
        codes.update(re.findall(r"""_error\(\s*["']([a-z_]+)["']""", text))
    for cls in vars(errors).values():
        if isinstance(cls, type) and issubclass(cls, errors.LiveblogError) and cls is not errors.ConfigError:
            codes.add(cls.code)
    return codes - {"config"}


def test_every_error_code_is_documented() -> None:
    docs = protocol_docs()
    missing = sorted(code for code in error_codes_in_code() if f"`{code}`" not in docs)
    assert missing == [], f"error codes not documented in docs/protocol*.md: {missing}"


def test_every_close_code_is_documented() -> None:
    docs = protocol_docs()
    for name, value in vars(CloseCode).items():
        if name.isupper():
            assert re.search(rf"^\| {value} \|", docs, re.M), (
                f"close code {value} ({name}) is not in the table"
            )


def test_the_readme_shows_the_two_commands_and_ci_runs_the_test_one() -> None:
    readme = (ROOT / "README.md").read_text()
    assert "./scripts/demo" in readme and "./scripts/test" in readme
    ci = [
        line
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert ci[-1].strip() == "./scripts/test"
    for doc in ("configuration", "protocol", "architecture", "deployment", "performance"):
        assert f"docs/{doc}.md" in readme
        assert (ROOT / "docs" / f"{doc}.md").exists()


def test_the_login_throttle_docs_state_the_rule_the_code_applies() -> None:
    """Before: docs/archive.md said 10 failures lock a reader out, while readers share the
    organisers' throttle: 5 free failures, then a back-off of at most 60 s, never a lock."""
    from liveblog.access.throttle import ACCOUNT_FREE, ADDRESS_FREE, MAX_BACKOFF

    rows = [
        line for line in (ROOT / "docs" / "archive.md").read_text().splitlines() if "`/account/login`" in line
    ]
    assert len(rows) == 1
    row = rows[0]
    logging_in = (
        (ROOT / "docs" / "configuration.md").read_text().split("## Logging in", 1)[1].split("\n## ", 1)[0]
    )
    for text in (row, logging_in):
        assert f"first {ACCOUNT_FREE} failures" in text and f"{MAX_BACKOFF:g} s" in text, text
    assert f"after {ADDRESS_FREE} failures" in logging_in
    assert "lock further tries" not in row, row
