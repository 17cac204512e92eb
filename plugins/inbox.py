"""Built-in plugin: inbox (being written)."""
