"""Built-in plugin: continuity (being written)."""
