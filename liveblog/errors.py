"""Domain errors. Each carries an HTTP status and a stable machine-readable code.

LiveblogError
 ├── ConfigError            (startup only)
 ├── BadRequest        400  bad_request, invalid_json, missing_field, unknown_type, ...
 │    └── TooLarge     413  too_large
 ├── Unauthorized      401  unauthorized
 ├── Forbidden         403  forbidden, bad_origin
 ├── NotFound          404  not_found
 ├── Conflict          409  client_id_conflict, session_ended, poll_closed, ...
 ├── RateLimited       429  rate_limited
 └── Unavailable       503  unavailable (the database did not answer in time, or is down)
The codes are part of the public protocol: docs/protocol.md lists them.
"""

from __future__ import annotations


class LiveblogError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def as_dict(self) -> dict[str, str]:
        out = {"code": self.code, "message": self.message}
        if self.field:
            out["field"] = self.field
        return out


class ConfigError(LiveblogError):
    code = "config"


class BadRequest(LiveblogError):
    status = 400
    code = "bad_request"


class TooLarge(BadRequest):
    status = 413
    code = "too_large"


class Unauthorized(LiveblogError):
    status = 401
    code = "unauthorized"


class Forbidden(LiveblogError):
    status = 403
    code = "forbidden"


class NotFound(LiveblogError):
    status = 404
    code = "not_found"


class Conflict(LiveblogError):
    status = 409
    code = "conflict"


class RateLimited(LiveblogError):
    status = 429
    code = "rate_limited"


class Unavailable(LiveblogError):
    """The store did not answer within its timeout, or is down: try again shortly."""

    status = 503
    code = "unavailable"
