"""Media types of the files ragbus reads, by file suffix (the CLI's readers and the API's uploads share them)."""

from __future__ import annotations

from pathlib import PurePath

# Text travels inline in the document event; every other type as a reference to its original bytes.
INLINE_MEDIA_TYPES = {".txt": "text/plain", ".md": "text/markdown", ".markdown": "text/markdown"}
ORIGINAL_MEDIA_TYPES = {
    ".pdf": "application/pdf",
    ".html": "text/html",
    ".htm": "text/html",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    ".pptx": "application/vnd.openxmlformats-officedocument.presentationml.presentation",
}


def media_type_for(filename: str) -> str | None:
    """The media type of a file name's suffix, or None for a suffix ragbus does not read."""
    suffix = PurePath(filename).suffix.lower()
    return INLINE_MEDIA_TYPES.get(suffix) or ORIGINAL_MEDIA_TYPES.get(suffix)
