"""Answering: retrieve passages, prompt the LLM, check citations, stream the answer."""
