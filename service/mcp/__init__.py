"""The MCP server: tools over the collections service (:mod:`.server`), served over stdio (:mod:`.stdio`,
``python -m service mcp``) and Streamable HTTP at ``/mcp`` (:mod:`.http`). See ``docs/agents.md``."""
