"""A session's comment thread as its page shows it to the person asking (live page and
knowledge page alike), and a comment the server refused, shown again in its form."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from starlette.requests import Request

from liveblog.web.auth import current_organiser, current_reader, services


@dataclass(frozen=True)
class RefusedComment:
    """A comment the server refused, shown again in its form with the reason."""

    body: str
    reason: str
    parent_id: int | None


async def thread_context(
    request: Request, session_id: str, refused: RefusedComment | None = None
) -> dict[str, Any]:
    """What templates/archive/_comments.html needs, for the viewer asking."""
    organiser = await current_organiser(request)
    me = await current_reader(request)
    thread = await services(request).comments.thread(session_id, moderator=organiser is not None, viewer=me)
    return {"thread": thread, "me": me, "moderator": organiser is not None, "refused": refused}
