"""The archive: finished sessions become permanent knowledge pages, tagged, searchable, exportable.

It works from storage alone (imports: archive -> streams -> storage), so a page can be rebuilt
from the database without any live process."""

from liveblog.archive.service import Archive, KnowledgePage

__all__ = ["Archive", "KnowledgePage"]
