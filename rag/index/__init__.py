"""Index writing and storage: load and clean articles, chunk them, tokenize, store, ingest."""
