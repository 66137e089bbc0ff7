"""The observables of an email-security event: what an analyst pivots on (IPs, addresses, hashes, URLs, hosts).

Each observable is named by the attribute path it was found at (``email.to``, ``file.hashes.value``), so the
validator can check the name resolves in the class. Email File / URL Activity and Data Security Finding have no
email object in OCSF 1.8.0: the sender, recipient and clicker addresses and the sender IP of those records stay in
``unmapped`` under their Mimecast names, and their valid values become observables *without a name* (a name must
be an attribute of the class, and ``type_id`` is the only required field).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from connector.mapping.values import email_parse as parse
from connector.ocsf.catalog import class_schema, load_enums, path_problem

__all__ = ["OBSERVABLE_PATHS", "RAW_OBSERVABLES", "ObservablePlan"]

OBSERVABLE_PATHS: Final[tuple[tuple[str, int], ...]] = (
    ("src_endpoint.ip", 2),
    ("dst_endpoint.ip", 2),
    ("dst_endpoint.hostname", 1),
    ("email.from", 5),
    ("email.return_path", 5),
    ("email.to", 5),
    ("email.urls.url_string", 6),
    ("url.url_string", 6),
    ("file.name", 7),
    ("file.hashes.value", 8),
    ("evidences.email.from", 5),
    ("evidences.email.to", 5),
    ("evidences.src_endpoint.ip", 2),
    ("actor.user.email_addr", 5),
)
"""(attribute path, observable type_id) looked for in every event whose class has the path."""
RAW_OBSERVABLES: Final[tuple[tuple[str, int], ...]] = (
    ("senderEnvelope", 5),
    ("senderAddress", 5),
    ("recipients", 5),
    ("recipient", 5),
    ("recipientAddress", 5),
    ("userEmailAddress", 5),
    ("fromUserEmailAddress", 5),
    ("senderIp", 2),
    ("sourceIp", 2),
    ("sendingIp", 2),
)
"""(raw field, type_id) whose valid values are name-less observables in classes without an email object."""
_CLASSES_WITHOUT_EMAIL: Final = frozenset({4011, 4012, 2006})
_MAX_OBSERVABLES: Final = 2 * parse.MAX_RECIPIENTS + 50


@dataclass(frozen=True, slots=True)
class ObservablePlan:
    """The observable paths of one class (only those under an attribute its rows set), and its raw fields."""

    paths: tuple[tuple[tuple[str, ...], str, int, str], ...]
    raw: tuple[tuple[str, int, str], ...]

    @classmethod
    def of(cls, class_uid: int, tops: set[str], *, enabled: bool) -> ObservablePlan:
        if not enabled:
            return cls((), ())
        schema, enums = class_schema(class_uid), load_enums()
        paths = tuple(
            (tuple(path.split(".")), path, type_id, enums.object_caption("observable", "type_id", type_id))
            for path, type_id in OBSERVABLE_PATHS
            if path.split(".")[0] in tops and path_problem(schema, path) is None
        )
        raw = tuple(
            (name, type_id, enums.object_caption("observable", "type_id", type_id))
            for name, type_id in RAW_OBSERVABLES
            if class_uid in _CLASSES_WITHOUT_EMAIL
        )
        return cls(paths, raw)

    def collect(self, event: Mapping[str, Any], record: Mapping[str, Any]) -> list[dict[str, Any]]:
        """The observables of ``event`` (and of the raw ``record``'s address fields), each value once per name."""
        found: list[dict[str, Any]] = []
        for path, name, type_id, caption in self.paths:
            values: list[str] = []
            _walk(event, path, 0, values)
            for value in dict.fromkeys(values):
                found.append({"name": name, "type_id": type_id, "type": caption, "value": value})
        seen: set[tuple[int, str]] = set()
        for field, type_id, caption in self.raw:
            raw = record.get(field)
            if raw is None:
                continue
            if type_id == 2:
                ip = parse.ip_address(raw)
                values = [ip] if ip else []
            else:
                values = parse.split_addresses(raw)[0]
            for value in values:
                if (type_id, value) not in seen:
                    seen.add((type_id, value))
                    found.append({"type_id": type_id, "type": caption, "value": value})
        return found[:_MAX_OBSERVABLES]


def _walk(node: object, path: tuple[str, ...], depth: int, out: list[str]) -> None:
    """Append the scalar values at ``path`` below ``node``, through lists (``email.to``, ``file.hashes``)."""
    if isinstance(node, list):
        for item in node:
            _walk(item, path, depth, out)
        return
    if depth == len(path):
        if isinstance(node, str | int) and not isinstance(node, bool):
            out.append(str(node))
        return
    if isinstance(node, dict):
        child = node.get(path[depth])
        if child is not None:
            _walk(child, path, depth + 1, out)
