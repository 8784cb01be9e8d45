"""placeholder"""

from __future__ import annotations

from typing import Any

from liveblog.settings import Settings


def build(settings: Settings) -> list[Any]:
    return []
