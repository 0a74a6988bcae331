"""CONTRACT.md "Merchants change amounts and reward kinds ... in the dashboard", through the dashboard's own form."""

from __future__ import annotations

import json
import re
import typing as t
from html.parser import HTMLParser

import responses as responses_lib
from flask.testing import FlaskClient

from tests.contract.conftest import Integrator
from tests.contract.conftest import order_payload
from tests.contract.conftest import register
from tests.shopify_actions import SHOP
from tests.shopify_actions import ShopifyActions
from tests.shopify_actions import session_token


class _Form(HTMLParser):
    """Collect the first form containing ``field``: its action and what a browser would submit."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, t.Any]] = []
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.forms.append({"action": a.get("action", ""), "method": a.get("method", "get").lower(),
                               "fields": {}})
        elif not self.forms:
            return
        elif tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            if kind in ("submit", "button"):
                return
            self.forms[-1]["fields"][a["name"]] = a.get("value", "on" if kind == "checkbox" else "")
        elif tag == "select" and a.get("name"):
            self._select = a["name"]
        elif tag == "option" and self._select is not None:
            fields = self.forms[-1]["fields"]
            if "selected" in a or self._select not in fields:
                fields[self._select] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None


def _form_with(html: str, needle: str) -> dict[str, t.Any]:
    parser = _Form()
    parser.feed(html)
    for form in parser.forms:
        if any(needle in name for name in form["fields"]):
            return form
    raise AssertionError(f"no form with a field like {needle!r}")


def test_merchant_changes_advocate_points_in_dashboard(client: FlaskClient, shopify: ShopifyActions,
                                                       integrator: Integrator) -> None:
    """The merchant sets the advocate reward to 250 points in the dashboard; the next referral pays 250."""
    register(shopify, 4801, "adv@example.com")
    register(shopify, 4802, "fr@example.com")
    code = integrator.code_of("adv@example.com")
    token = next(c["token"] for c in integrator.get("/api/v1/campaigns").get_json()["data"] if c["isDefault"])
    page = client.get(f"/admin/campaigns/{token}", query_string={"id_token": session_token(SHOP)})
    assert page.status_code == 200
    form = _form_with(page.get_data(as_text=True), "advocate")
    value_fields = [name for name in form["fields"] if "advocate" in name and "value" in name]
    assert len(value_fields) == 1, form["fields"]
    fields = dict(form["fields"])
    fields[value_fields[0]] = "250"
    action = form["action"] or f"/admin/campaigns/{token}"
    response = client.post(action, data=fields, query_string={"id_token": session_token(SHOP)}
                           if "id_token" not in action else None)
    assert response.status_code in (200, 302, 303), response.get_data(as_text=True)[:500]
    campaign = next(c for c in integrator.get("/api/v1/campaigns").get_json()["data"] if c["isDefault"])
    assert campaign["advocateReward"]["value"] == 250
    paid = shopify.post_webhook("orders/paid", order_payload(4890, 4802, "fr@example.com", code=code))
    assert paid.status_code == 200
    assert integrator.summary(4801)["totalPointEarnRefer"] == 250
    assert integrator.summary(4802)["totalPointEarnRefer"] == 50


def _fake_shopify(request: t.Any) -> tuple[int, dict[str, str], str]:
    """Answer any Admin GraphQL mutation with a created discount node and no user errors."""
    body = json.loads(request.body)
    query = body["query"]
    match = re.search(r"(?:mutation|query)[^{]*{\s*(\w+)", query)
    root = match.group(1) if match else "data"
    if query.lstrip().startswith("mutation"):
        payload: dict[str, t.Any] = {root: {"codeDiscountNode": {"id": "gid://shopify/DiscountCodeNode/91"},
                                            "userErrors": []}}
    else:
        payload = {root: None}
    return 200, {}, json.dumps({"data": payload})


def make_advocate_reward_a_discount(client: FlaskClient, integrator: Integrator) -> None:
    """As the merchant, set the default campaign's advocate reward to a 10.00 fixed-amount discount code."""
    token = next(c["token"] for c in integrator.get("/api/v1/campaigns").get_json()["data"] if c["isDefault"])
    page = client.get(f"/admin/campaigns/{token}", query_string={"id_token": session_token(SHOP)})
    form = _form_with(page.get_data(as_text=True), "advocate")
    fields = dict(form["fields"])
    kind = next(name for name in fields if "advocate" in name and "kind" in name)
    value = next(name for name in fields if "advocate" in name and "value" in name)
    fields[kind], fields[value] = "fixed_amount", "10"
    action = form["action"] or f"/admin/campaigns/{token}"
    saved = client.post(action, data=fields,
                        query_string=None if "id_token" in action else {"id_token": session_token(SHOP)})
    assert saved.status_code in (200, 302, 303)


def test_merchant_switches_advocate_to_discount_code(app: t.Any, client: FlaskClient, shopify: ShopifyActions,
                                                     integrator: Integrator,
                                                     mocked_responses: responses_lib.RequestsMock) -> None:
    """With a fixed-amount advocate reward, the referral issues a Shopify discount code (a coupon) to the advocate."""
    url = f"https://{SHOP}/admin/api/{app.config['SHOPIFY_API_VERSION']}/graphql.json"
    mocked_responses.add_callback(responses_lib.POST, url, callback=_fake_shopify, content_type="application/json")
    register(shopify, 4901, "adv@example.com")
    register(shopify, 4902, "fr@example.com")
    code = integrator.code_of("adv@example.com")
    make_advocate_reward_a_discount(client, integrator)
    campaign = next(c for c in integrator.get("/api/v1/campaigns").get_json()["data"] if c["isDefault"])
    assert campaign["advocateReward"] == {"kind": "fixed_amount", "value": 10}
    paid = shopify.post_webhook("orders/paid", order_payload(4990, 4902, "fr@example.com", code=code))
    assert paid.status_code == 200
    mutations = [c for c in mocked_responses.calls if b"discountCodeBasicCreate" in (c.request.body or b"")]
    assert mutations, [c.request.body for c in mocked_responses.calls]
    summary = client.get("/admin/api/summary", headers={"Authorization": f"Bearer {session_token(SHOP)}"})
    assert summary.get_json()["couponsIssued"] == 1
    assert integrator.summary(4902)["totalPointEarnRefer"] == 50
