"""OCSF 1.8.0: the catalog (version, class schemas, enums, captions) and the validator every event passes."""
