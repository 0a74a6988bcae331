"""Typed SQLAlchemy 2 models, one module per area, re-exported here."""

from referral_plugin.models.base import Base
from referral_plugin.models.base import UTCDateTime
from referral_plugin.models.base import utcnow
from referral_plugin.models.campaign import Campaign
from referral_plugin.models.campaign import CampaignStatus
from referral_plugin.models.campaign import RewardKind
from referral_plugin.models.customer import Customer
from referral_plugin.models.customer import PaidOrder
from referral_plugin.models.ledger import EntryType
from referral_plugin.models.ledger import LedgerEntry
from referral_plugin.models.ledger import Side
from referral_plugin.models.ops import ApiKey
from referral_plugin.models.ops import AuditEvent
from referral_plugin.models.ops import DataExport
from referral_plugin.models.ops import WebhookDelivery
from referral_plugin.models.referral import Click
from referral_plugin.models.referral import Invitation
from referral_plugin.models.referral import InvitationStatus
from referral_plugin.models.referral import OrderAttribution
from referral_plugin.models.referral import Referral
from referral_plugin.models.referral import ReferralCode
from referral_plugin.models.referral import ReferralStatus
from referral_plugin.models.shop import OAuthState
from referral_plugin.models.shop import Shop
from referral_plugin.models.summary import SummaryDay
from referral_plugin.models.summary import SummaryDayKey
from referral_plugin.models.summary import SummaryState

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "Campaign",
    "CampaignStatus",
    "Click",
    "Customer",
    "DataExport",
    "EntryType",
    "Invitation",
    "InvitationStatus",
    "LedgerEntry",
    "OAuthState",
    "OrderAttribution",
    "PaidOrder",
    "Referral",
    "ReferralCode",
    "ReferralStatus",
    "RewardKind",
    "Shop",
    "Side",
    "SummaryDay",
    "SummaryDayKey",
    "SummaryState",
    "UTCDateTime",
    "WebhookDelivery",
    "utcnow",
]
