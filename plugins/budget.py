"""Built-in plugin: budget (being written)."""
