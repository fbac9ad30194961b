"""The dead-letter topic: record format (pure) and the operator tools (list/show/replay/stats)."""
