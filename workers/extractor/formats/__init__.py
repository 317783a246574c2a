"""One module per format, each `extract(bytes) -> Extraction` for the media types it lists."""

from __future__ import annotations

from collections.abc import Callable
from types import ModuleType

from ragbus.errors import UnreadableDocument
from workers.extractor.formats import docx, html, markdown, pdf, pptx, text
from workers.extractor.formats.types import Extraction

_MODULES: tuple[ModuleType, ...] = (pdf, html, docx, pptx, markdown, text)
EXTRACTORS: dict[str, Callable[[bytes], Extraction]] = {
    media_type: module.extract for module in _MODULES for media_type in module.MEDIA_TYPES
}


def extract(media_type: str, data: bytes) -> Extraction:
    """The blocks of `data`; UnreadableDocument for an unknown media type or a file its library refuses."""
    extractor = EXTRACTORS.get(media_type.split(";", maxsplit=1)[0].strip().lower())
    if extractor is None:
        raise UnreadableDocument(
            f"unknown media type {media_type!r} (known: {', '.join(sorted(EXTRACTORS))})", code="unknown_media_type"
        )
    return extractor(data)


__all__ = ["EXTRACTORS", "Extraction", "extract"]
