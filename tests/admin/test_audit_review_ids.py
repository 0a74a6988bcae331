"""The review JSON call decides only referrals it was given by id: true or 1.9 is not referral 1."""

from __future__ import annotations

import pytest

from referral_plugin.extensions import db
from referral_plugin.models import Referral
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History
from tests.admin.test_workflows import held


@pytest.mark.parametrize("given", [True, 1.9, 1.0, "1.0", " ", "١"])
def test_ids_that_only_int_would_read_are_refused(shop: Shop, history: History, dashboard: Dashboard,
                                                  given: object) -> None:
    """A boolean, a fraction or a non-ASCII digit is a 400 INVALID_IDS and the held referral stays held."""
    referral = held(history)
    assert referral.id == 1

    response = dashboard.post_json("/admin/api/review", {"action": "approve", "ids": [given]})

    assert response.status_code == 400 and response.get_json()["error"]["code"] == "INVALID_IDS"
    db.session.expire_all()
    assert db.session.get(Referral, referral.id).status == ReferralStatus.HELD


def test_whole_numbers_and_their_digits_still_decide(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """An id as a number or as digits is decided."""
    referral = held(history)

    response = dashboard.post_json("/admin/api/review", {"action": "reject", "ids": [str(referral.id)]})

    assert response.status_code == 200 and response.get_json()["decided"] == [referral.id]
