"""The only code that touches Starlette requests and websockets: routes, pages, API, sockets.

Registered here, before any module builds its routes: `{name:id}`, the path convertor of every
id and page number in a path."""

from starlette.convertors import Convertor, register_url_convertor


class IdConvertor(Convertor[int]):
    """An item id in a path: at most 18 digits, so it fits SQLite's 64-bit integers; a longer
    one matches no route (404) instead of overflowing in the database."""

    regex = "[0-9]{1,18}"

    def convert(self, value: str) -> int:
        return int(value)

    def to_string(self, value: int) -> str:
        return str(value)


register_url_convertor("id", IdConvertor())
