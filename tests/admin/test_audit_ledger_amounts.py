"""A referral's ledger history shows a percentage reward as a percentage and money with its currency."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import Customer
from referral_plugin.models import EntryType
from referral_plugin.models import ReferralStatus
from referral_plugin.models import RewardKind
from referral_plugin.models import Shop
from referral_plugin.models import Side
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History


def test_percentage_and_money_amounts_are_told_apart(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """A held 10% code reads '10%', a $5 code '5.00 USD' and a code applied at checkout its money off."""
    advocate, code = history.advocate("liam@example.com", "Liam")
    referral = history.referral(advocate, code, "tess@example.com", "2026-11-02 12:00", status=ReferralStatus.HELD,
                                reason="HOLD_PERIOD")
    friend = db.session.get(Customer, referral.friend_id)
    assert friend is not None
    history.entry(referral, friend, EntryType.HOLD, "2026-11-02 13:00", amount="10", kind=RewardKind.PERCENTAGE,
                  side=Side.FRIEND)
    history.entry(referral, advocate, EntryType.HOLD, "2026-11-02 13:00", amount="5", kind=RewardKind.FIXED_AMOUNT)
    applied = history.entry(referral, friend, EntryType.GRANT, "2026-11-02 13:00", amount="8.80",
                            kind=RewardKind.PERCENTAGE, side=Side.FRIEND)
    applied.reason = "APPLIED_AT_CHECKOUT"
    db.session.commit()

    html = dashboard.get(f"/admin/referrals/{referral.id}").get_data(as_text=True)
    ledger = html[html.index('id="ledger-heading"'):]

    assert '<td class="num">10%</td>' in ledger
    assert '<td class="num">5.00 <span class="cur">USD</span></td>' in ledger
    assert '<td class="num">8.80 <span class="cur">USD</span></td>' in ledger
    assert "10.00" not in ledger
