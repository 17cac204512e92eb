"""Built-in plugin: screenplay (being written)."""
