"""Serving the knowledge base to other tools: an OpenAI-compatible HTTP API and an MCP server."""
