"""Who may do what: organiser accounts and login sessions, note-taker invites, audience
participants, the same-origin and CSRF rules, and the registry of sockets each credential opened.

One door: every transport (HTTP, websocket, SSE) asks this package, and revoking a credential here
closes what it opened. It knows nothing of HTTP frameworks; `liveblog/web/` is the Starlette glue.
"""
