"""What the server keeps besides the indexes, in one SQLite database (``RAG_DB``): knowledge bases,
users, groups, grants, API keys and the audit log (see docs/knowledge-bases.md)."""
