"""Black-box audit of the integrator API (CONTRACT.md and seeds 000, 001, 003): bad input and lookups.

Keys come from ``flask api-key create``; customers and orders from signed webhooks. Every bad input must
be a 4xx in the route's envelope, on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

import base64
import io
import typing as t

import pytest
from flask.testing import FlaskClient

from tests.admin.conftest import Dashboard
from tests.contract.conftest import Integrator
from tests.contract.conftest import register
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import load_payload

LOOKUP = "/v2/customers/lookup/referrals"
ROUTES: list[tuple[str, str]] = [
    ("post", "/v1.1/customer/referrals"),
    ("get", f"{LOOKUP}?source=INSTORE&identifierName=id&identifierValue=1"),
    ("post", "/rest_api/v2/referrals/invitations"),
    ("get", "/rest_api/v2/referrals/customers/1/summary"),
    ("get", "/api/v1/campaigns"),
]


def _with_nul(key: str) -> str:
    """Return the key with one character of its public prefix replaced by NUL."""
    return key[:6] + "\x00" + key[7:]


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("form", ["basic", "x-api-key", "bearer"])
def test_a_key_holding_nul_is_401_not_500(client: FlaskClient, api_key: str, route: tuple[str, str],
                                          form: str) -> None:
    """A key with NUL (always deliverable inside a Basic header's base64) is a wrong key: 401 JSON."""
    bad = _with_nul(api_key)
    headers = {
        "basic": {"Authorization": "Basic " + base64.b64encode(b":" + bad.encode()).decode()},
        "x-api-key": {"X-Api-Key": bad},
        "bearer": {"Authorization": f"Bearer {bad}"},
    }[form]
    method, path = route
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401, response.get_data(as_text=True)
    assert response.is_json


@pytest.mark.parametrize("path", ["/v1.1/customer/referrals", "/rest_api/v2/referrals/invitations"])
def test_a_chunked_body_over_the_limit_is_413(client: FlaskClient, integrator: Integrator, path: str) -> None:
    """A body over 2 MiB sent chunked (no Content-Length, as gunicorn passes it on) is a 413, not read whole."""
    register(ShopifyActions(client), 9601, "chunked@example.com")
    big = b'{"email": "chunked@example.com", "pad": "' + b"a" * (3 * 1024 * 1024) + b'"}'
    response = client.post(path, input_stream=io.BytesIO(big),
                           headers={"X-Api-Key": integrator.key, "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 413, response.get_data(as_text=True)
    assert response.is_json


def test_a_chunked_body_under_the_limit_is_read(client: FlaskClient, shopify: ShopifyActions,
                                                integrator: Integrator) -> None:
    """The limit only refuses what is over it: a small chunked Joy invitation still works."""
    register(shopify, 9602, "small-chunked@example.com")
    response = client.post("/rest_api/v2/referrals/invitations",
                           input_stream=io.BytesIO(b'{"email": "small-chunked@example.com"}'),
                           headers={"X-Api-Key": integrator.key, "Content-Type": "application/json",
                                    "Transfer-Encoding": "chunked"},
                           environ_overrides={"wsgi.input_terminated": True})
    assert response.status_code == 200, response.get_data(as_text=True)
    assert response.get_json()["data"]["referralCode"]


@pytest.mark.parametrize(("query", "code", "field"), [
    ("startDate=2026-02-01&endDate=2026-01-01", "INVALID_RANGE", "startDate"),
    ("startDate=2099-01-01", "INVALID_RANGE", "startDate"),
    ("startDate=2020-01-01&endDate=2026-01-01", "RANGE_TOO_LONG", "endDate"),
])
def test_joy_analytics_range_errors_name_the_query_parameter(integrator: Integrator, query: str, code: str,
                                                              field: str) -> None:
    """A reversed or too long range names startDate/endDate, the parameters the integrator sent."""
    response = integrator.get(f"/rest_api/v2/referrals/analytics?{query}")
    assert response.status_code == 400
    error = response.get_json()["error"]
    assert (error["code"], error["field"]) == (code, field)


def test_lookup_finds_a_mobile_without_country_code_as_refer_does(shopify: ShopifyActions,
                                                                   integrator: Integrator) -> None:
    """Seed 000 names its Indian advocate ``7999836466``; the lookup by that same mobile finds the same customer."""
    register(shopify, 9603, "in-advocate@example.com", phone="+917999836466")
    refer = integrator.post("/v1.1/customer/referrals", json={"root": {"customer": [{
        "mobile": "7999836466", "referrals": {"referral_type": {"type": "EMAIL", "referral": [
            {"id": "", "name": "Friend", "identifier": "in-friend@example.com"}]}}}]}})
    customer = refer.get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1000 and customer["external_id"] == "9603"

    lookup = integrator.get(LOOKUP, query_string={"source": "INSTORE", "identifierName": "mobile",
                                                  "identifierValue": "7999836466"})
    assert lookup.status_code == 200, lookup.get_data(as_text=True)
    data = lookup.get_json()["data"][0]
    assert data["customer"]["id"] == 9603
    assert [i["identifier"] for i in data["invitees"]] == ["in-friend@example.com"]


def test_lookup_by_national_number_stays_8015_when_two_countries_share_it(shopify: ShopifyActions,
                                                                          integrator: Integrator) -> None:
    """A national number two customers of different countries share names nobody: 8015, not a guess."""
    register(shopify, 9604, "in@example.com", phone="+917999836466")
    register(shopify, 9605, "gb@example.com", phone="+447999836466")
    lookup = integrator.get(LOOKUP, query_string={"source": "INSTORE", "identifierName": "mobile",
                                                  "identifierValue": "7999836466"})
    assert lookup.status_code == 404
    assert [e["code"] for e in lookup.get_json()["errors"]] == [8015]


def _redact(shopify: ShopifyActions, customer_id: int, email: str) -> None:
    payload = load_payload("customers_redact")
    payload.update(shop_domain=SHOP, customer={"id": customer_id, "email": email, "phone": None},
                   orders_to_redact=[])
    assert shopify.post_webhook("customers/redact", payload).status_code == 200


def test_a_redacted_customer_is_nobody_on_every_route(shopify: ShopifyActions, integrator: Integrator) -> None:
    """After customers/redact the customer is unknown by id too: 8015 and 404, as refer and Joy invitations say."""
    register(shopify, 9606, "erase-me@example.com")
    integrator.code_of("erase-me@example.com")
    _redact(shopify, 9606, "erase-me@example.com")

    for name in ("id", "externalId"):
        lookup = integrator.get(LOOKUP, query_string={"source": "INSTORE", "identifierName": name,
                                                      "identifierValue": "9606"})
        assert lookup.status_code == 404, lookup.get_data(as_text=True)
        assert [e["code"] for e in lookup.get_json()["errors"]] == [8015]
    for what in ("summary", "referrers"):
        response = integrator.get(f"/rest_api/v2/referrals/customers/9606/{what}")
        assert response.status_code == 404, response.get_data(as_text=True)
        assert response.get_json()["error"]["code"] == "CUSTOMER_NOT_FOUND"
    invitation = integrator.post("/rest_api/v2/referrals/invitations", json={"email": "erase-me@example.com"})
    assert invitation.status_code == 404
    refer = integrator.post("/v1.1/customer/referrals", json={"root": {"customer": [{"external_id": "9606"}]}})
    assert refer.get_json()["response"]["customers"]["customer"][0]["item_status"]["code"] == 1012


@pytest.mark.parametrize("prefix", ["%00", "rpk_%00", "rpk_abc%00defg"])
def test_dashboard_revoke_of_a_prefix_with_nul_is_404(client: FlaskClient, shopify: ShopifyActions,
                                                      integrator: Integrator, prefix: str) -> None:
    """Revoking a "prefix" holding NUL from the dashboard names no key: 404, and the real key still works."""
    response = Dashboard(client, shopify).post(f"/admin/settings/api-keys/{prefix}/revoke", {})
    assert response.status_code == 404
    assert integrator.get("/api/v1/campaigns").status_code == 200


@pytest.mark.parametrize("name", ["a\x00b", "tab\there", "line\nbreak"])
def test_a_key_name_with_control_characters_is_refused(client: FlaskClient, shopify: ShopifyActions,
                                                       integrator: Integrator, name: str) -> None:
    """A key label with NUL, a tab or a newline is a 400 from the dashboard and creates no key."""
    dashboard = Dashboard(client, shopify)
    before = dashboard.get("/admin/settings").get_data(as_text=True).count("rpk_")
    response = dashboard.post("/admin/settings/api-keys", {"name": name})
    assert response.status_code == 400
    assert dashboard.get("/admin/settings").get_data(as_text=True).count("rpk_") == before


def test_cli_refuses_a_key_name_with_a_tab(runner: t.Any, integrator: Integrator) -> None:
    """``api-key create --name`` with a tab is a usage error (exit 2), not a key that breaks ``api-key list``."""
    result = runner.invoke(args=["api-key", "create", SHOP, "--name", "a\tb"])
    assert result.exit_code == 2, result.output
    listing = runner.invoke(args=["api-key", "list", SHOP]).output
    assert "a\tb" not in listing


@pytest.mark.parametrize("route", ROUTES)
@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "rpk_aaaaaaaa_wrong"}, {"Authorization": "Basic Og=="}])
def test_a_401_carries_the_authentication_challenge(client: FlaskClient, api_key: str, route: tuple[str, str],
                                                    headers: dict[str, str]) -> None:
    """A missing or wrong key is a 401 with ``WWW-Authenticate`` (RFC 9110) offering Bearer and Basic."""
    method, path = route
    response = getattr(client, method)(path, headers=headers)
    assert response.status_code == 401
    challenge = response.headers.get("WWW-Authenticate", "")
    assert challenge.startswith("Bearer ") and "Basic " in challenge


def _refer_element(**referrals: t.Any) -> dict[str, t.Any]:
    return {"root": {"customer": [{"mobile": "+917999836466", "referrals": referrals}]}}


def _invitees(integrator: Integrator) -> list[t.Any]:
    answer = integrator.get(LOOKUP, query_string={"source": "INSTORE", "identifierName": "mobile",
                                                  "identifierValue": "+917999836466"}).get_json()
    found: list[t.Any] = answer["data"][0]["invitees"]
    return found


@pytest.mark.parametrize("token", [["X"], {"token": "X"}, True, 1.5])
def test_a_campaign_token_of_the_wrong_type_is_1222_not_the_default(shopify: ShopifyActions,
                                                                    integrator: Integrator, token: t.Any) -> None:
    """A campaign_token that is no string names no campaign: 1222 and nobody invited, not the default campaign."""
    register(shopify, 9607, "token-type@example.com", phone="+917999836466")
    response = integrator.post("/v1.1/customer/referrals", json=_refer_element(
        campaign_token=token, referral_type={"type": "EMAIL", "referral": [{"identifier": "tt@example.com"}]}))
    customer = response.get_json()["response"]["customers"]["customer"][0]
    assert customer["item_status"]["code"] == 1222
    assert customer["referrals"]["referral_type"][0]["referral"][0]["status"]["code"] == 1222
    assert _invitees(integrator) == []


@pytest.mark.parametrize("referrals", [[{"referral_type": {"type": "EMAIL", "referral": [
    {"identifier": "lost@example.com"}]}}], "EMAIL", 7])
def test_referrals_that_are_not_an_object_are_a_400_before_anything_is_written(
        shopify: ShopifyActions, integrator: Integrator, referrals: t.Any) -> None:
    """``referrals`` of the wrong type is a 400 naming the element, not a 1000 with nobody invited; the batch waits."""
    register(shopify, 9608, "referrals-type@example.com", phone="+917999836466")
    good = {"mobile": "+917999836466", "referrals": {"referral_type": {"type": "EMAIL", "referral": [
        {"identifier": "kept-out@example.com"}]}}}
    response = integrator.post("/v1.1/customer/referrals", json={"root": {"customer": [
        good, {"mobile": "+917999836466", "referrals": referrals}]}})
    assert response.status_code == 400
    status = response.get_json()["response"]["status"]
    assert status["success"] == "false" and status["code"] == 400
    assert "customer[1].referrals" in status["message"]
    assert _invitees(integrator) == []


def test_the_openapi_document_names_the_challenge_and_the_refer_400s(client: FlaskClient) -> None:
    """/api/openapi.json documents WWW-Authenticate on every 401 and the refer route's malformed-element 400."""
    document = client.get("/api/openapi.json").get_json()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if "401" in operation["responses"]:
                assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], path
    refer = document["paths"]["/v1.1/customer/referrals"]["post"]
    assert "referrals element" in refer["responses"]["400"]["description"]
    assert {p["name"] for p in refer["parameters"]} == {"mobile", "email"}


@pytest.mark.parametrize(("method", "path"), [
    ("get", "/api/v1//campaigns"),
    ("get", "/v2/customers//lookup/referrals?source=INSTORE&identifierName=id&identifierValue=1"),
    ("post", "/v1.1//customer/referrals"),
    ("post", "/rest_api/v2/referrals//invitations"),
    ("get", "/rest_api/v2//referrals/analytics"),
    ("get", "/api//openapi.json"),
])
def test_a_doubled_slash_is_a_json_404_not_an_html_redirect(integrator: Integrator, method: str, path: str) -> None:
    """"Every response is JSON": a path with a doubled slash is the surface's 404, not werkzeug's HTML 308."""
    response = getattr(integrator, method)(path)
    assert response.status_code == 404
    assert response.is_json


def test_an_exact_identifier_beats_a_national_number_guess(shopify: ShopifyActions, integrator: Integrator) -> None:
    """With email and a country-less mobile naming different customers, the exact email match decides."""
    register(shopify, 9609, "exact@example.com")
    register(shopify, 9610, "guessed@example.com", phone="+917999836466")
    lookup = integrator.get(LOOKUP, query_string={"source": "INSTORE", "identifierName": "email,mobile",
                                                  "identifierValue": "exact@example.com,7999836466"})
    assert lookup.status_code == 200
    assert lookup.get_json()["data"][0]["customer"]["id"] == 9609
    alone = integrator.get(LOOKUP, query_string={"source": "INSTORE", "identifierName": "mobile",
                                                 "identifierValue": "7999836466"})
    assert alone.get_json()["data"][0]["customer"]["id"] == 9610


def test_refer_prefers_an_exact_email_to_a_national_number_guess(shopify: ShopifyActions,
                                                                 integrator: Integrator) -> None:
    """An element with a country-less mobile (another customer's national number) and an exact email is the email's."""
    register(shopify, 9611, "exact-refer@example.com")
    register(shopify, 9612, "guessed-refer@example.com", phone="+917999836466")
    response = integrator.post("/v1.1/customer/referrals", json={"root": {"customer": [
        {"mobile": "7999836466", "email": "exact-refer@example.com"}, {"mobile": "7999836466"}]}})
    customers = response.get_json()["response"]["customers"]["customer"]
    assert [c["external_id"] for c in customers] == ["9611", "9612"]


@pytest.mark.parametrize("route", ROUTES)
def test_api_answers_are_never_stored_by_caches(client: FlaskClient, integrator: Integrator,
                                                route: tuple[str, str]) -> None:
    """Answers hold a shop's customers and X-Api-Key is no Authorization header: ``no-store`` keeps shared
    caches from serving one key's answer to another, errors included."""
    method, path = route
    for headers in ({"X-Api-Key": integrator.key}, {}):
        response = getattr(client, method)(path, headers=headers)
        assert "no-store" in response.headers.get("Cache-Control", ""), (path, response.status_code)


@pytest.mark.parametrize(("query", "limit", "offset"), [
    ("limit=1000&offset=5", 100, 5),
    ("limit=0", 10, 0),
    ("limit=%2010%20&offset=%203", 10, 3),
])
def test_a_lookup_errors_pagination_is_what_a_success_would_use(integrator: Integrator, query: str, limit: int,
                                                                offset: int) -> None:
    """An 8015 answer's pagination shows the limit a success would have used (capped at 100), not the raw text."""
    response = integrator.get(f"{LOOKUP}?source=INSTORE&identifierName=email&identifierValue=nobody@example.com&"
                              f"{query}")
    answer = response.get_json()
    assert [e["code"] for e in answer["errors"]] == [8015] or answer["errors"][0]["code"] == 400
    assert answer["pagination"] == {"limit": limit, "offset": offset, "total": 0}
