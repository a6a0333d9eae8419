"""rag: local, cited question answering over Chinese articles."""

__version__ = "0.1.0"
