"""Mimecast API 2.0 → OCSF 1.8.0 connector."""
