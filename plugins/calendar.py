"""Built-in plugin: calendar (being written)."""
