"""The only code that touches Starlette requests and websockets: routes, pages, API, sockets."""
