"""Hand-built, valid OCSF 1.8.0 events of the five email classes (with the security_control profile).

Built to exercise every kind of Parquet column the Arrow schemas have: scalars, structs two levels deep, lists of
scalars and of structs, objects cut into JSON strings (``metadata.product.feature``), free-form ``unmapped``.
``tests/test_parquet_sink.py`` checks that the validator accepts each of them before using them.
"""

from __future__ import annotations

import copy
from typing import Any

T0 = 1_781_532_070_000  # 2026-06-15T14:01:10Z


def _metadata(uid: str) -> dict[str, Any]:
    return {
        "product": {"name": "Email Security Cloud Gateway", "vendor_name": "Mimecast", "feature": {"name": "TTP"}},
        "profiles": ["security_control"],
        "uid": uid,
        "version": "1.8.0",
    }


def _header(class_uid: int, class_name: str, category: tuple[int, str], activity: tuple[int, str]) -> dict[str, Any]:
    return {
        "activity_id": activity[0],
        "activity_name": activity[1],
        "category_uid": category[0],
        "category_name": category[1],
        "class_uid": class_uid,
        "class_name": class_name,
        "type_uid": class_uid * 100 + activity[0],
        "type_name": f"{class_name}: {activity[1]}",
        "severity_id": 1,
        "severity": "Informational",
    }


_NETWORK = (4, "Network Activity")
_FINDINGS = (2, "Findings")


def email_events() -> dict[str, dict[str, Any]]:
    """table -> one event of that table (fresh copies on every call)."""
    events: dict[str, dict[str, Any]] = {
        "email_activity": {
            **_header(4009, "Email Activity", _NETWORK, (2, "Receive")),
            "direction_id": 1,
            "direction": "Inbound",
            "email": {
                "from": "sender@example.net",
                "to": ["alice@contoso.example.org", "bob@contoso.example.org"],
                "subject": "Quarterly numbers",
                "uid": "<m1@example.net>",
                "size": 12345,
            },
            "src_endpoint": {"ip": "198.51.100.7"},
            "action_id": 1,
            "action": "Allowed",
            "disposition_id": 1,
            "disposition": "Allowed",
            "metadata": _metadata("0b7f7a4e-0d3f-5b8a-9d6c-1a2b3c4d5e01"),
            "time": T0,
            "unmapped": {"route": "inbound", "tagMap": {"Scan": {"Status": ["Clean"]}}},
        },
        "email_file_activity": {
            **_header(4011, "Email File Activity", _NETWORK, (3, "Scan")),
            "email_uid": "<m2@example.net>",
            "file": {
                "name": "numbers.pdf",
                "type_id": 1,
                "type": "Regular File",
                "mime_type": "application/pdf",
                "hashes": [
                    {
                        "algorithm_id": 3,
                        "algorithm": "SHA-256",
                        "value": "eaeef09b60a59b913e9bfc0a4373e25d6182beff388957473fba517cc09345e3",
                    }
                ],
            },
            "disposition_id": 1,
            "disposition": "Allowed",
            "status_detail": "Safe\r\nTime taken: 0 hrs, 0 min, 4 sec",
            "metadata": _metadata("0b7f7a4e-0d3f-5b8a-9d6c-1a2b3c4d5e02"),
            "time": T0 + 1000,
        },
        "email_url_activity": {
            **_header(4012, "Email URL Activity", _NETWORK, (3, "Scan")),
            "email_uid": "<m3@example.net>",
            "url": {"url_string": "https://example.com/setup.exe", "categories": ["Dangerous file extension"]},
            "action_id": 2,
            "action": "Denied",
            "disposition_id": 2,
            "disposition": "Blocked",
            "observables": [
                {"name": "url.url_string", "type_id": 6, "type": "URL String", "value": "https://example.com/setup.exe"}
            ],
            "metadata": _metadata("0b7f7a4e-0d3f-5b8a-9d6c-1a2b3c4d5e03"),
            "time": T0 + 2000,
        },
        "detection_finding": {
            **_header(2004, "Detection Finding", _FINDINGS, (1, "Create")),
            "finding_info": {
                "uid": "MTOKEN:eNqrVkouLS7Jz00tSs5PSVWy",
                "title": "Impersonation Protect",
                "types": ["targeted_threat_dictionary", "internal_user_name"],
                "analytic": {"name": "IP - 2 hits", "type_id": 1, "type": "Rule"},
            },
            "disposition_id": 3,
            "disposition": "Quarantined",
            "metadata": _metadata("0b7f7a4e-0d3f-5b8a-9d6c-1a2b3c4d5e04"),
            "time": T0 + 3000,
            "unmapped": {"impersonationResults": [{"checkerResult": "hit", "similarDomain": "Emily <e@example.com>"}]},
        },
        "data_security_finding": {
            **_header(2006, "Data Security Finding", _FINDINGS, (1, "Create")),
            "finding_info": {"uid": "dlp-7f3a", "title": "DLP: Confidential"},
            "actor": {"user": {"email_addr": "kay.mann@contoso.example.org", "name": "kay.mann"}},
            "disposition_id": 3,
            "disposition": "Quarantined",
            "metadata": _metadata("0b7f7a4e-0d3f-5b8a-9d6c-1a2b3c4d5e05"),
            "time": T0 + 4000,
        },
    }
    return copy.deepcopy(events)
