"""Campaign listing, the OpenAPI document, routing errors and the per-key rate limit."""

from __future__ import annotations

import re
import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referral_plugin.api import api_blueprint_names
from referral_plugin.extensions import db
from referral_plugin.models import Shop
from referral_plugin.referrals.campaigns import create_campaign
from tests.api.conftest import ApiClient


def test_campaigns_lists_the_shops_campaigns(api: ApiClient, api_shop: Shop) -> None:
    """GET /api/v1/campaigns lists the default campaign first, with its rewards and rules."""
    create_campaign(api_shop, {"name": "Spring", "advocate_reward_kind": "percentage",
                               "advocate_reward_value": "15", "friend_reward_kind": "fixed_amount",
                               "friend_reward_value": "5.50", "min_order_subtotal": "20"}, actor="test")
    db.session.commit()
    response = api.get("/api/v1/campaigns")
    assert response.status_code == 200
    default, spring = response.get_json()["data"]
    assert default["isDefault"] is True and default["status"] == "active"
    assert default["advocateReward"] == {"kind": "points", "value": 100}
    assert default["friendReward"] == {"kind": "points", "value": 50}
    assert re.fullmatch(r"[A-Z2-9]{5}", default["token"])
    assert {"token", "name", "status", "isDefault", "advocateReward", "friendReward", "minOrderSubtotal",
            "newCustomersOnly", "advocateCap", "holdDays", "startsAt", "endsAt"} <= set(default)
    assert spring["name"] == "Spring" and spring["isDefault"] is False
    assert spring["advocateReward"] == {"kind": "percentage", "value": 15}
    assert spring["friendReward"] == {"kind": "fixed_amount", "value": 5.5}
    assert spring["minOrderSubtotal"] == 20


def _api_routes(app: Flask) -> set[tuple[str, str]]:
    names = api_blueprint_names()
    routes = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.split(".")[0] not in names:
            continue
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:
                routes.add((path, method.lower()))
    return routes


def test_openapi_document_matches_the_url_map(app: Flask, client: FlaskClient) -> None:
    """Every API route is documented and every documented operation is a route (paths and methods)."""
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.get_json()
    assert document["openapi"].startswith("3.")
    documented = {(path, method) for path, item in document["paths"].items() for method in item}
    assert documented == _api_routes(app)
    assert len(documented) == 8


def test_openapi_document_describes_auth_errors_and_headers(client: FlaskClient) -> None:
    """The document names the three auth forms, every operation's error responses and the rate-limit headers."""
    document = client.get("/api/openapi.json").get_json()
    schemes = document["components"]["securitySchemes"]
    assert schemes["ApiKeyHeader"] == {"type": "apiKey", "in": "header", "name": "X-Api-Key"}
    assert schemes["BearerKey"]["scheme"] == "bearer" and schemes["BasicKey"]["scheme"] == "basic"
    assert {"RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "Retry-After"} <= set(
        document["components"]["headers"])
    for path, item in document["paths"].items():
        for operation in item.values():
            if path == "/api/openapi.json":
                continue
            assert {"200", "401", "404", "429"} <= set(operation["responses"]), path
            assert "Retry-After" in operation["responses"]["429"]["headers"]
            for response in operation["responses"].values():
                ref = response["content"]["application/json"]["schema"].get("$ref")
                if ref:
                    assert ref.rsplit("/", 1)[1] in document["components"]["schemas"]
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "path":
                    assert "{" + parameter["name"] + "}" in path


@pytest.mark.parametrize(("method", "path", "check"), [
    ("get", "/v1.1/customer/referrals", lambda b: b["response"]["status"]["code"] == 405),
    ("post", "/v1.1/customer/nothing", lambda b: b["response"]["status"]["code"] == 404),
    ("post", "/v2/customers/lookup/referrals", lambda b: b["errors"][0]["code"] == 405),
    ("get", "/v2/nothing", lambda b: b["errors"][0]["code"] == 404),
    ("get", "/rest_api/v2/referrals/invitations", lambda b: b["error"]["code"] == "METHOD_NOT_ALLOWED"),
    ("get", "/rest_api/v2/nothing", lambda b: b["success"] is False and b["error"]["code"] == "NOT_FOUND"),
    ("post", "/api/v1/campaigns", lambda b: b["error"]["code"] == "METHOD_NOT_ALLOWED"),
    ("get", "/api/v1/nothing", lambda b: b["error"]["code"] == "NOT_FOUND"),
])
def test_routing_errors_answer_in_the_surface_envelope(client: FlaskClient, method: str, path: str,
                                                       check: t.Callable[[t.Any], bool]) -> None:
    """404 and 405 under the API prefixes are JSON in that surface's envelope."""
    response = getattr(client, method)(path)
    assert response.status_code in (404, 405)
    assert response.is_json and check(response.get_json())


@pytest.fixture
def app_config(app_config: dict[str, t.Any]) -> dict[str, t.Any]:
    """Allow three API requests a minute per key."""
    return {**app_config, "API_RATE_LIMIT": "3 per minute"}


def test_rate_limit_is_per_key_with_headers_and_429_in_the_envelope(api: ApiClient, other_api: ApiClient) -> None:
    """The fourth call in a minute is 429 in the route's envelope, with Retry-After; other keys are unaffected."""
    remaining = []
    for _ in range(3):
        response = api.get("/api/v1/campaigns")
        assert response.status_code == 200
        assert response.headers["RateLimit-Limit"] == "3"
        assert 0 < int(response.headers["RateLimit-Reset"]) <= 60
        remaining.append(int(response.headers["RateLimit-Remaining"]))
    assert remaining == [2, 1, 0]
    blocked = api.get("/rest_api/v2/referrals/analytics")
    assert blocked.status_code == 429
    assert 1 <= int(blocked.headers["Retry-After"]) <= 60
    assert blocked.headers["RateLimit-Remaining"] == "0" and blocked.headers["RateLimit-Limit"] == "3"
    body = blocked.get_json()
    assert body["success"] is False and body["error"]["code"] == "RATE_LIMITED"
    capillary = api.post("/v1.1/customer/referrals", json={"root": {"customer": []}})
    assert capillary.status_code == 429 and capillary.get_json()["response"]["status"]["code"] == 429
    lookup = api.get("/v2/customers/lookup/referrals")
    assert lookup.status_code == 429 and lookup.get_json()["errors"][0]["code"] == 429
    assert other_api.get("/api/v1/campaigns").status_code == 200


def test_made_up_keys_share_one_counter_per_address_and_spare_real_keys(api: ApiClient, client: FlaskClient) -> None:
    """Wrong keys are counted per client address (a fresh key opens no fresh budget); a live key keeps its own."""
    statuses = [
        client.get("/api/v1/campaigns", headers={"X-Api-Key": f"rpk_made{n:04d}_up"}).status_code for n in range(4)
    ]
    assert statuses == [401, 401, 401, 429]
    assert api.get("/api/v1/campaigns").status_code == 200


def test_the_openapi_document_is_not_rate_limited(api: ApiClient, client: FlaskClient) -> None:
    """The public document does not spend a key's budget."""
    for _ in range(5):
        assert client.get("/api/openapi.json").status_code == 200
    assert api.get("/api/v1/campaigns").status_code == 200


def test_an_oversized_body_is_413_not_429(api: ApiClient) -> None:
    """A body over 2 MiB is refused with 413 in the route's envelope, so clients do not back off and retry."""
    response = api.post("/v1.1/customer/referrals", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                        content_type="application/json")
    assert response.status_code == 413 and response.get_json()["response"]["status"]["code"] == 413
    joy = api.post("/rest_api/v2/referrals/invitations", data=b" " * (3 * 1024 * 1024), content_type="application/json")
    assert joy.status_code == 413 and joy.get_json()["error"]["code"] == "PAYLOAD_TOO_LARGE"


@pytest.mark.parametrize("value", ["abc", "-1 per minute", "1000 per fortnight"])
def test_an_unreadable_rate_limit_fails_at_start(app_config: dict[str, t.Any], value: str) -> None:
    """API_RATE_LIMIT that is no rate limit stops create_app, instead of flask-limiter limiting nothing."""
    from referral_plugin import create_app
    from referral_plugin.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="API_RATE_LIMIT"):
        create_app({**app_config, "API_RATE_LIMIT": value})


@pytest.mark.parametrize("value", ["2 per minute", "2/minute;100/hour"])
def test_a_readable_rate_limit_applies(app_config: dict[str, t.Any], value: str) -> None:
    """A valid API_RATE_LIMIT, single or several, is the limit the third request meets."""
    from referral_plugin import create_app
    from referral_plugin.apikeys import create_key
    from tests.conftest import make_shop

    app = create_app({**app_config, "API_RATE_LIMIT": value})
    with app.app_context():
        db.create_all()
        try:
            key = create_key(make_shop(), "limit").key
            db.session.commit()
            client = app.test_client()
            codes = [client.get("/api/v1/campaigns", headers={"X-Api-Key": key}).status_code for _ in range(3)]
            assert codes == [200, 200, 429]
        finally:
            db.session.remove()
            db.drop_all()
            db.engine.dispose()
