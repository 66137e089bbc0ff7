"""Talking to Mimecast: authentication, transport caps, retries and the rate gate, the API client (no OCSF)."""
