"""Built-in plugin: demo (being written)."""
