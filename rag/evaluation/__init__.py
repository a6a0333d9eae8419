"""The regression set and ``rag eval``: questions, scoring, metrics, baseline gate, reports."""
