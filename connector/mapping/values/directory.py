"""The values of the directory: a user of a directory pull (User Inventory Info) and a group membership change seen
between two pulls (Group Management).

Two kinds, because the tables map different things: ``user_inventory.yaml`` maps a raw directory user,
``membership.yaml`` a ``MembershipChange`` the connector computed (it has no raw fields at all).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Final

from connector.errors import MappingError
from connector.mapping.snapshot import MembershipChange
from connector.mapping.values.common import RecordInput, build_user, common_sources, new_user
from connector.mapping.values.source import SourceKind
from connector.ocsf.catalog import load_enums

__all__ = ["DIRECTORY_USER", "MEMBERSHIP", "DirectoryUser", "Membership", "user_groups"]

# The account of every directory user: OCSF account.type_id 18 "Email Account", with its caption.
_EMAIL_ACCOUNT: Final = {"type_id": 18, "type": load_enums().object_caption("account", "type_id", 18)}


class DirectoryUser(RecordInput):
    """One raw directory user (``key`` is its uid and the collection time).

    Attributes:
        record: The raw user (``emailAddress``, ``name``, ``domain``, ``groups: [{id, description}]``...).
        address: Its ``emailAddress``, which the caller checked is a non-blank string.
        uid: The lower-cased address: the user's uid, the same as audit events give the same person.
    """

    __slots__ = ("address", "record", "uid")
    uid_kind: ClassVar[str] = "user"

    def __init__(self, record: Mapping[str, Any], address: str, collected_ms: int) -> None:
        self.uid = uid = address.strip().lower()
        self.key = f"{uid}:{collected_ms}"
        self.collected_ms = collected_ms
        self.record = record
        self.address = address


class Membership(RecordInput):
    """One membership change seen between the pull of ``baseline_ms`` and the one of ``collected_ms``.

    ``key`` is group, member, change and ``baseline_ms`` (see ``Mapper.map_membership_change`` for why).
    """

    __slots__ = ("change",)
    uid_kind: ClassVar[str] = "membership"

    def __init__(self, change: MembershipChange, collected_ms: int, baseline_ms: int) -> None:
        self.key = f"{change.group_id}:{change.member}:{'add' if change.added else 'remove'}:{baseline_ms}"
        self.collected_ms = collected_ms
        self.change = change


DIRECTORY_USER: Final = SourceKind[DirectoryUser](
    "directory user", common_sources("address + collection time", raw_inputs=("emailAddress",))
)
MEMBERSHIP: Final = SourceKind[Membership](
    "membership change", common_sources("group + member + change + the previous pull's collection time")
)


def user_groups(raw: object, uid: str) -> list[dict[str, str]]:
    """The ``groups`` of a directory user as OCSF groups; absent or null is none.

    Anything else than a list of objects with a non-empty string ``id`` (and a string or absent ``description``)
    refuses the user: a half-understood membership list would publish an inventory that looks complete.

    Raises:
        MappingError: naming the user's uid.
    """
    if raw is None:
        return []
    if not isinstance(raw, list):
        raise MappingError(f"directory user {uid} has groups that are not a list", record_id=uid)
    groups = []
    for index, group in enumerate(raw):
        group_id = group.get("id") if isinstance(group, dict) else None
        description = group.get("description") if isinstance(group, dict) else None
        if not isinstance(group_id, str) or not group_id or not isinstance(description, str | None):
            raise MappingError(
                f"directory user {uid} has groups[{index}] that is not an object with a string id and description",
                record_id=uid,
            )
        groups.append({"uid": group_id, "name": description or group_id})
    return groups


@DIRECTORY_USER.derived(
    "inventory_user",
    "user object of a directory user: name/uid/email_addr/domain/full_name, account {type_id 18 Email Account}, "
    "groups [{uid, name}]",
    raw_inputs=("emailAddress", "name", "domain", "groups"),
)
def inventory_user(user_input: DirectoryUser) -> dict[str, Any]:
    """The user object; each address once per pull, so nothing to memoise (unlike ``build_user``)."""
    record = user_input.record
    user = new_user(user_input.address, record.get("name"))
    assert user is not None  # the address is a non-blank string
    domain = record.get("domain")
    if isinstance(domain, str) and domain:
        user["domain"] = domain.lower()
    user["account"] = {**_EMAIL_ACCOUNT, "name": user_input.address, "uid": user["uid"]}
    groups = user_groups(record.get("groups"), user["uid"])
    if groups:
        user["groups"] = groups
    return user


@MEMBERSHIP.derived("group", "group object: uid = Mimecast group (folder) id, name = its description (else the id)")
def membership_group(change_input: Membership) -> dict[str, str]:
    change = change_input.change
    return {"uid": change.group_id, "name": change.group_name or change.group_id}


@MEMBERSHIP.derived("member_user", "user object of the member added/removed")
def membership_member(change_input: Membership) -> dict[str, Any] | None:
    return build_user(change_input.change.member)


@MEMBERSHIP.derived("message", "a sentence describing the membership change")
def membership_message(change_input: Membership) -> str:
    change = change_input.change
    verb = "added to" if change.added else "removed from"
    return f"{change.member} was {verb} group {change.group_name or change.group_id} (seen between two directory pulls)"
