import pytest

pytestmark = pytest.mark.portable


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200 and r.json == {"status": "ok"}


def test_org_flow(client, world):
    alice = world.user()
    r = client.post("/v1/orgs", json={"name": "Acme"}, headers=alice.headers)
    assert r.status_code == 201, r.json
    org = r.json
    r = client.get("/v1/orgs", headers=alice.headers)
    assert [o["id"] for o in r.json["items"]] == [org["id"]]
    r = client.get(f"/v1/orgs/{org['id']}", headers=world.user().headers)
    assert r.status_code == 404
