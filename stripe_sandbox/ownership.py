"""Account ownerships and their owners: made when an ownership refresh succeeds, listed by the owners endpoint."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from stripe_sandbox.errors import ApiError, not_found
from stripe_sandbox.ids import IdFactory

OWNERSHIP_OBJECT = "financial_connections.account_ownership"
OWNER_OBJECT = "financial_connections.account_owner"
OWNER_FIELDS = ("email", "name", "phone", "raw_address")


@dataclass(slots=True)
class Ownership:
    id: str
    account_id: str
    created: int
    owners: list[dict[str, Any]] = field(default_factory=list)
    positions: dict[str, int] = field(default_factory=dict)


def owners_url(account_id: str) -> str:
    return f"/v1/financial_connections/accounts/{account_id}/owners"


class OwnershipStore:
    """Every ownership made, kept by id; an account's `ownership` names its latest."""

    def __init__(self, ids: IdFactory) -> None:
        self.ids = ids
        self.ownerships: dict[str, Ownership] = {}

    def clear(self) -> None:
        self.ownerships.clear()

    def create(self, account_id: str, created: int, owners: list[dict[str, Any]]) -> Ownership:
        ownership = Ownership(self.ids.new("fcaowns"), account_id, created)
        for given in owners:
            owner = {"email": given.get("email"), "id": self.ids.new("fcaowner"), "name": given["name"],
                     "object": OWNER_OBJECT, "ownership": ownership.id, "phone": given.get("phone"),
                     "raw_address": given.get("raw_address"), "refreshed_at": created}
            ownership.positions[owner["id"]] = len(ownership.owners)
            ownership.owners.append(owner)
        self.ownerships[ownership.id] = ownership
        return ownership

    def for_account(self, account_id: str, ownership_id: str) -> Ownership:
        ownership = self.ownerships.get(ownership_id)
        if ownership is None or ownership.account_id != account_id:
            raise not_found(OWNERSHIP_OBJECT, ownership_id, param="ownership")
        return ownership

    def expanded(self, ownership_id: str) -> dict[str, Any] | None:
        """The ownership object, as `expand[]=ownership` shows it (its first 10 owners)."""
        ownership = self.ownerships.get(ownership_id)
        if ownership is None:
            return None
        return {"created": ownership.created, "id": ownership.id, "object": OWNERSHIP_OBJECT,
                "owners": {"object": "list", "data": ownership.owners[:10], "has_more": len(ownership.owners) > 10,
                           "url": owners_url(ownership.account_id)}}

    @staticmethod
    def page(ownership: Ownership, limit: int, starting_after: Any, ending_before: Any) -> tuple[list[Any], bool]:
        """Owners in the institution's order; cursors are owner ids of this ownership."""
        owners = ownership.owners
        if starting_after is not None:
            start = _position(ownership, starting_after, "starting_after") + 1
            chosen = owners[start:start + limit]
            return chosen, start + limit < len(owners)
        if ending_before is not None:
            end = _position(ownership, ending_before, "ending_before")
            start = max(0, end - limit)
            return owners[start:end], start > 0
        return owners[:limit], limit < len(owners)


def _position(ownership: Ownership, owner_id: Any, param: str) -> int:
    position = ownership.positions.get(owner_id) if isinstance(owner_id, str) else None
    if position is None:
        raise ApiError(400, f"No such {OWNER_OBJECT}: '{owner_id}'", param=param, code="resource_missing",
                       validation=True)
    return position


def default_owners(customer: dict[str, Any] | None, account_doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Owners an institution would report: the holding customer's name and email, else the account's name."""
    if customer is not None:
        name = customer.get("name") or customer.get("email") or customer["id"]
        return [{"name": name, "email": customer.get("email"), "phone": customer.get("phone")}]
    return [{"name": account_doc.get("display_name") or account_doc.get("institution_name") or "Account holder"}]
