"""Built-in plugin: casting_site (being written)."""
