"""Locate the data files the connector ships: mapping tables and OCSF JSON Schemas.

`mappings/` and `schemas/` live at the top of the repository so analysts review them there; the wheel ships
them as `connector._mappings` / `connector._schemas`. An editable install has no such packages, so fall back
to the repository root.
"""

from __future__ import annotations

from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

__all__ = ["manifest_text", "mappings_dir", "schemas_dir"]

_REPO_ROOT = Path(__file__).resolve().parent.parent


def _locate(package: str, folder: str) -> Traversable:
    try:
        return resources.files(package)
    except ModuleNotFoundError:
        return _REPO_ROOT / folder


def mappings_dir() -> Traversable:
    """The folder holding the mapping tables (`*.yaml`) and their schema."""
    return _locate("connector._mappings", "mappings")


def schemas_dir() -> Traversable:
    """The folder holding the generated OCSF JSON Schemas and the manifest schema."""
    return _locate("connector._schemas", "schemas")


def manifest_text() -> str:
    """The text of ``manifest.json`` (top of the repository; ``connector/_manifest`` inside the wheel)."""
    try:
        return resources.files("connector._manifest").joinpath("manifest.json").read_text(encoding="utf-8")
    except ModuleNotFoundError:
        return (_REPO_ROOT / "manifest.json").read_text(encoding="utf-8")
