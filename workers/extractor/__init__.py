"""Extractor stage: document events in, ExtractedDocument (structured text) out."""
