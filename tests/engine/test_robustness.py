"""Malformed but signed payloads never make a handler fail (a 5xx would have Shopify retry it for days)."""

from __future__ import annotations

import typing as t

from hypothesis import HealthCheck
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from tests.engine.conftest import Store
from tests.engine.conftest import customer_payload
from tests.engine.conftest import order_payload
from tests.engine.conftest import refund_payload

_json_scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                          st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40))
_json = st.recursive(_json_scalars, lambda inner: st.lists(inner, max_size=3)
                     | st.dictionaries(st.text(max_size=10), inner, max_size=3), max_leaves=8)

_ORDER_FIELDS = ["id", "customer", "discount_codes", "note_attributes", "landing_site", "subtotal_price",
                 "total_price", "test", "email", "phone", "shipping_address", "processed_at", "name", "currency"]
_CUSTOMER_FIELDS = ["id", "email", "phone", "note", "first_name", "default_address", "created_at", "addresses"]
_REFUND_FIELDS = ["id", "order_id", "transactions", "refund_line_items"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order_changes=st.dictionaries(st.sampled_from(_ORDER_FIELDS), _json, max_size=4),
       customer_changes=st.dictionaries(st.sampled_from(_CUSTOMER_FIELDS), _json, max_size=3),
       refund_changes=st.dictionaries(st.sampled_from(_REFUND_FIELDS), _json, max_size=2))
def test_engine_topics_answer_200_to_odd_payloads(store: Store, order_changes: dict[str, t.Any],
                                                  customer_changes: dict[str, t.Any],
                                                  refund_changes: dict[str, t.Any]) -> None:
    """customers/create, orders/paid, refunds/create and orders/cancelled cope with any JSON in their fields."""
    advocate = store.register()
    customer = customer_payload(**customer_changes)
    store.send("customers/create", customer)
    order = order_payload(customer_payload(), code=store.code_of(advocate))
    order.update(order_changes)
    store.pay(order)
    refund = refund_payload(123, "10.00")
    refund.update(refund_changes)
    store.send("refunds/create", refund)
    store.send("orders/cancelled", order)
