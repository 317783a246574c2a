"""Publish document events to Kafka, keyed by document id so each document stays ordered."""

from producers.publisher import PublishReport, publish_documents
from producers.sources.files import read_documents

__all__ = ["PublishReport", "publish_documents", "read_documents"]
