"""Inviting through the API, and answering as the invitee does."""

from __future__ import annotations

from typing import Any

from tests.support import Person


def invite(client: Any, inviter: Person, place_path: str, email: str, role: str) -> Any:
    return client.post(f"{place_path}/members", json={"email": email, "role": role},
                       headers=inviter.headers)


def mine(client: Any, person: Person) -> list[dict[str, Any]]:
    response = client.get("/v1/invitations", headers=person.headers)
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.get_json()["items"]


def accept(client: Any, person: Person, invitation_id: str) -> Any:
    return client.post(f"/v1/invitations/{invitation_id}/accept", headers=person.headers)


def invite_and_accept(client: Any, inviter: Person, place_path: str, person: Person,
                      role: str) -> Any:
    """The whole grant: invited, then accepted by `person` (verified)."""
    sent = invite(client, inviter, place_path, person.email, role)
    assert sent.status_code == 202, sent.get_data(as_text=True)
    return accept(client, person, sent.get_json()["id"])
