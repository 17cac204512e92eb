"""castroom sync: moving updates between machines (Yjs protocol, server, client, folder)."""
