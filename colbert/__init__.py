"""Late-interaction (MaxSim) scoring and a visual-document index (embedded SQLite, or Qdrant)."""
