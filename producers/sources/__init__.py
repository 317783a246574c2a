"""Sources of document events, one module per kind of source (files, a watched folder, Postgres, Debezium)."""
