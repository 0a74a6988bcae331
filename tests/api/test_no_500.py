"""Property: no API route answers 500 (or non-JSON) to arbitrary JSON bodies and query strings."""

from __future__ import annotations

import json
import typing as t
from urllib.parse import quote
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from referral_plugin.models import Customer
from tests.api.conftest import ApiClient

leaves = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
          | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=24)
          | st.sampled_from(["7999836466", "+917999836466", "a@example.com", "MOBILE", "EMAIL", "J0H7Q", "",
                             "99999999999999999999999", "5001", "0001-01-01", "9999-12-31"]))
json_values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4), max_leaves=12)
referral = st.fixed_dictionaries({}, optional={"id": leaves, "invited_on": leaves, "name": leaves,
                                               "identifier": leaves})
referral_type = st.fixed_dictionaries({}, optional={"type": leaves, "referral": st.lists(referral, max_size=3)
                                                    | referral | leaves})
capillary_like = st.fixed_dictionaries({"root": st.fixed_dictionaries({"customer": st.lists(
    st.fixed_dictionaries({}, optional={"mobile": leaves, "email": leaves, "external_id": leaves,
                                        "referrals": st.fixed_dictionaries({}, optional={
                                            "campaign_token": leaves,
                                            "referral_type": referral_type | st.lists(referral_type, max_size=2)
                                            | leaves})}), max_size=3) | json_values})})
joy_like = st.fixed_dictionaries({}, optional={"email": leaves, "campaignToken": leaves})
bodies = (json_values.map(lambda v: json.dumps(v).encode()) | capillary_like.map(lambda v: json.dumps(v).encode())
          | joy_like.map(lambda v: json.dumps(v).encode()) | st.binary(max_size=64)
          | st.sampled_from([b"NaN", b"[Infinity]", b'{"email": NaN}', b"\xff\xfe"]))
param_names = st.sampled_from(["source", "identifierName", "identifierValue", "campaignToken", "limit", "offset",
                               "startDate", "endDate"]) | st.text(max_size=8)
param_values = leaves.map(lambda v: "" if v is None else str(v)) | st.sampled_from(
    ["INSTORE", "mobile,email", "7999836466,a@example.com", "id", "externalId", "-1", "0", "10000000000"])
queries = st.dictionaries(param_names, param_values, max_size=6).map(urlencode)
customer_ids = st.text(max_size=24) | st.sampled_from(["5001", "0", "-5", "99999999999999999999999", "\u00b2"])

ROUTES: list[tuple[str, str]] = [
    ("post", "/v1.1/customer/referrals"),
    ("get", "/v2/customers/lookup/referrals"),
    ("post", "/rest_api/v2/referrals/invitations"),
    ("get", "/rest_api/v2/referrals/customers/{}/referrers"),
    ("get", "/rest_api/v2/referrals/customers/{}/summary"),
    ("get", "/rest_api/v2/referrals/analytics"),
    ("get", "/api/v1/campaigns"),
    ("get", "/api/openapi.json"),
]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                     HealthCheck.too_slow])
@given(route=st.sampled_from(ROUTES), body=bodies, query=queries, customer_id=customer_ids,
       content_type=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded"]))
def test_no_route_answers_500(api: ApiClient, advocate: Customer, route: tuple[str, str], body: bytes, query: str,
                              customer_id: str, content_type: str) -> None:
    """Whatever JSON, bytes and query string arrive, each route answers JSON with a status below 500."""
    method, template = route
    path = template.format(quote(customer_id, safe="")) if "{}" in template else template
    call: t.Callable[..., t.Any] = getattr(api, method)
    response = call(f"{path}?{query}", data=body, content_type=content_type)
    assert response.status_code < 500, (path, query, body, response.get_data(as_text=True))
    assert response.is_json


header_text = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=255), max_size=80)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=st.sampled_from(["X-Api-Key", "Authorization", "X-Joy-Loyalty-App-Key"]), value=header_text,
       scheme=st.sampled_from(["", "Bearer ", "Basic ", "basic ", "Token "]))
def test_no_auth_header_answers_500(client: t.Any, api_key: str, name: str, value: str, scheme: str) -> None:
    """Arbitrary credentials are 401 (or 200 for the real key), never 500."""
    response = client.get("/api/v1/campaigns", headers={name: scheme + value})
    assert response.status_code in (200, 401), response.get_data(as_text=True)
    assert response.is_json


@pytest.mark.parametrize("path", [
    "/v2/customers/lookup/referrals?source=INSTORE&identifierName=id&identifierValue=%C2%B2",
    "/v2/customers/lookup/referrals?source=INSTORE&identifierName=mobile&identifierValue=7999836466&limit=%C2%B2",
    "/v2/customers/lookup/referrals?source=INSTORE&identifierName=mobile&identifierValue=7999836466&offset=%C2%B2",
    "/v2/customers/lookup/referrals?limit=%C2%B2",
    "/rest_api/v2/referrals/customers/%C2%B2/summary",
    "/rest_api/v2/referrals/customers/%C2%B2/referrers",
])
def test_unicode_digits_are_not_numbers(api: ApiClient, advocate: Customer, path: str) -> None:
    """Ids and page values of digits int() rejects ("²" passes str.isdigit) answer JSON below 500."""
    response = api.get(path)
    assert response.status_code < 500, response.get_data(as_text=True)
    assert response.is_json


@pytest.mark.parametrize("path", ["/rest_api/v2/referrals/customers/0%2F/referrers",
                                  "/rest_api/v2/referrals/customers/0%2F/summary"])
def test_customer_id_with_a_slash_is_a_json_404(api: ApiClient, advocate: Customer, path: str) -> None:
    """An id with a slash is no customer: a 404 in Joy's envelope, not an HTML redirect to a merged path."""
    response = api.get(path)
    assert response.status_code == 404
    assert response.is_json and response.get_json()["success"] is False
