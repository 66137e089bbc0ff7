"""Where events go: the sink protocol and its implementations (NDJSON files, standard output)."""
