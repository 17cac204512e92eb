"""Built-in plugin: reports (being written)."""
