"""Evidence reads as text: accents and angle brackets as themselves (escaped for HTML), not JSON \\u escapes."""

from __future__ import annotations

from referral_plugin.extensions import db
from referral_plugin.models import ReferralStatus
from referral_plugin.models import Shop
from tests.admin.conftest import Dashboard
from tests.admin.conftest import History


def test_evidence_shows_the_characters_escaped_once(shop: Shop, history: History, dashboard: Dashboard) -> None:
    """A note '<b>same</b> household & co' and a name 'José' show as typed on the referral page and the queue."""
    advocate, code = history.advocate("ann@example.com", "Ann")
    referral = history.referral(advocate, code, "cat@example.com", "2026-11-02 12:00", status=ReferralStatus.HELD,
                                reason="REVIEW_SHARED_ADDRESS",
                                evidence={"note": "<b>same</b> household & co", "shared_with": "José"})
    db.session.commit()

    for path in (f"/admin/referrals/{referral.id}", "/admin/review"):
        html = dashboard.get(path).get_data(as_text=True)
        assert "&lt;b&gt;same&lt;/b&gt; household &amp; co" in html, path
        assert "José" in html, path
        assert "\\u003c" not in html and "\\u00e9" not in html and "<b>same</b>" not in html
