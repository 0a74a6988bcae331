"""Audit as Shopify: secret rotation and session-token clock leeway across every signed surface."""

from __future__ import annotations

import time
import typing as t
from urllib.parse import urlencode

import pytest
from flask.testing import FlaskClient

from referral_plugin.models import Shop
from tests.shopify_actions import OLD_API_SECRET
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload
from tests.shopify_actions import session_token
from tests.shopify_actions import signed_admin_query


def _summary(client: FlaskClient, token: str) -> t.Any:
    return client.get("/admin/api/summary", headers={"Authorization": f"Bearer {token}"})


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Configure a rotation in progress: the previous secret is still accepted."""
    return {**app_config, "SHOPIFY_API_SECRET_OLD": OLD_API_SECRET}


def test_old_secret_accepted_everywhere_during_rotation(client: FlaskClient, shop: Shop) -> None:
    """Install hmac, webhook hmac, proxy signature and session token made with the old secret all pass."""
    old = ShopifyActions(client, secret=OLD_API_SECRET)
    install = client.get("/auth/install?" + urlencode(signed_admin_query({"shop": SHOP}, secret=OLD_API_SECRET)))
    assert install.status_code == 302
    assert old.post_webhook("customers/create", load_payload("customers_create")).status_code == 200
    assert old.proxy_get("widget", 5).status_code == 200
    assert _summary(client, old.session_token()).status_code == 200


def test_other_secret_refused_everywhere(client: FlaskClient, shop: Shop) -> None:
    """A third secret (neither current nor previous) is refused on every surface, with 401 and no redirect."""
    other = ShopifyActions(client, secret="not-our-secret")
    install = client.get("/auth/install?" + urlencode(signed_admin_query({"shop": SHOP}, secret="not-our-secret")))
    assert install.status_code == 401 and "Location" not in install.headers
    assert other.post_webhook("customers/create", load_payload("customers_create")).status_code == 401
    assert other.proxy_get("widget", 5).status_code == 401
    response = _summary(client, other.session_token())
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


@pytest.mark.parametrize(("claims", "status"), [
    ({"nbf": 8}, 200), ({"nbf": 20}, 401), ({"exp": -8}, 200), ({"exp": -20}, 401),
], ids=["nbf-within-leeway", "nbf-beyond", "exp-within-leeway", "exp-beyond"])
def test_session_token_leeway(client: FlaskClient, shop: Shop, claims: dict[str, int], status: int) -> None:
    """App Bridge clocks may be a few seconds off: 10 s of leeway on nbf and exp, no more."""
    now = int(time.time())
    token = session_token(SHOP, **{name: now + offset for name, offset in claims.items()})
    assert _summary(client, token).status_code == status


@pytest.mark.parametrize("sub", ["\ud800", "a\x00b", "x" * 129, ""], ids=["lone-surrogate", "nul", "too-long", "empty"])
def test_session_token_with_unusable_user_id_is_401(client: FlaskClient, shop: Shop, sub: str) -> None:
    """A correctly signed token whose ``sub`` is not storable text is an invalid session, not a 500 on every page."""
    token = session_token(SHOP, sub=sub)
    for path in ("/admin", "/admin/settings"):
        assert client.get(path, query_string={"id_token": token}).status_code == 401
    response = _summary(client, token)
    assert response.status_code == 401
    assert response.headers["X-Shopify-Retry-Invalid-Session-Request"] == "1"


def test_session_token_with_a_gid_user_id_is_accepted(client: FlaskClient, shop: Shop) -> None:
    """A ``sub`` in GID form (as non-admin surfaces send) is a usable user id."""
    assert _summary(client, session_token(SHOP, sub="gid://shopify/StaffMember/42")).status_code == 200


def test_longest_accepted_user_id_can_change_settings(client: FlaskClient, shop: Shop) -> None:
    """A 128-character ``sub`` still makes audited dashboard changes (its actor fits the audit log)."""
    import re

    token = session_token(SHOP, sub="9" * 128)
    page = client.get("/admin/settings", query_string={"id_token": token}).get_data(as_text=True)
    match = re.search(r'name="csrf-token" content="([^"]+)"', page)
    assert match
    response = client.post("/admin/settings/api-keys", query_string={"id_token": token},
                           data={"csrf_token": match.group(1), "name": "erp"})
    assert response.status_code == 200, response.get_data(as_text=True)
    from sqlalchemy import select

    from referral_plugin.extensions import db
    from referral_plugin.models import AuditEvent

    actors = db.session.execute(select(AuditEvent.actor)).scalars().all()
    assert actors == ["shopify-user:" + "9" * 128]
