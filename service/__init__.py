"""Jina- and OpenAI-compatible embedding server with document collections and search."""
