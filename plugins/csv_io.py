"""Built-in plugin: csv_io (being written)."""
