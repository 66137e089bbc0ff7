"""The Mimecast data streams: one descriptor per stream, its cursor and dedup choices, and the registry of them."""
