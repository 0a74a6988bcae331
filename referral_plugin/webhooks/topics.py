"""The table of topics this app handles: one line per topic, pointing at the service that does the work."""

from __future__ import annotations

from referral_plugin.webhooks.registry import register


def register_topic_handlers() -> None:
    """Fill the handler table. Imports are local so the table reads top to bottom."""
    # Each team adds its topics here, e.g.:
    #   from referral_plugin.referrals import lifecycle
    #   register("customers/create", lifecycle.handle_customers_create)
    _ = register
    from referral_plugin.webhooks import lifecycle as app_lifecycle

    register("app/uninstalled", app_lifecycle.handle_app_uninstalled)

    from referral_plugin.referrals import lifecycle as engine

    register("customers/create", engine.handle_customers_create)
    register("orders/paid", engine.handle_orders_paid)
    register("orders/cancelled", engine.handle_orders_cancelled)
    register("refunds/create", engine.handle_refunds_create)

    from referral_plugin import privacy

    register("customers/redact", privacy.handle_customers_redact)
    register("customers/data_request", privacy.handle_customers_data_request)
    register("shop/redact", privacy.handle_shop_redact)
