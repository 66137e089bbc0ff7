"""OCSF 1.8.0: the catalog of versions, enums and captions, and the validator every event passes."""
