"""query_api."""
