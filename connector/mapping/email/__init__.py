"""Mapping of Mimecast's email-security records (SIEM logs, TTP URL / Attachment / Impersonation, DLP) to OCSF.

The interface the streams and ``map --source`` use is ``map_email(source, record, key, collected_ms)``. The
decisions are the reviewed tables in ``mappings/`` (``email_types.yaml``, ``email_common.yaml`` and one field
table per class), compiled once by ``rules``; the per-value logic is ``connector.mapping.values.email``, the text
readers ``connector.mapping.values.email_parse``, the per-record loop ``mapper``, the observables
``observables``. Decisions and facts: ``docs/email-mapping.md``.
"""

from __future__ import annotations

from functools import cache

from connector.events import MappedEvent
from connector.mapping.email.mapper import EmailMapper
from connector.mapping.email.rules import EMAIL_SOURCES

__all__ = ["EMAIL_SOURCES", "EmailMapper", "email_mapper", "map_email"]


@cache
def email_mapper() -> EmailMapper:
    """The process's mapper over the shipped tables (built, and the tables compiled, on first use)."""
    return EmailMapper()


def map_email(source: str, record: object, key: str, collected_ms: int) -> MappedEvent:
    """One email-security record as an OCSF event of its class (not yet validated).

    Args:
        source: One of ``EMAIL_SOURCES``.
        record: The raw record (transport fields included: they go to ``unmapped``).
        key: Its dedup key (id or content key): ``metadata.uid`` is derived from it, and a refusal names it.
        collected_ms: When it was collected (``metadata.logged_time``).

    Raises:
        MappingError: the record cannot be mapped (named by ``key``).
    """
    return email_mapper().map(source, record, key, collected_ms)
