"""Sources: read documents (files, JSONL) into validated document events.

Publishing them is the core's job (`ragbus.document_publisher`), so every entry point publishes the same way.
"""

from producers.sources.files import read_documents

__all__ = ["read_documents"]
