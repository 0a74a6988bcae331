"""POST /webhooks: every Shopify topic arrives here."""

from __future__ import annotations

from flask import Blueprint
from flask import Response
from flask import current_app
from flask import jsonify
from flask import request

from referral_plugin.observability import set_webhook_context
from referral_plugin.observability import set_webhook_outcome
from referral_plugin.webhooks import intake
from referral_plugin.webhooks import queued

bp = Blueprint("webhooks", __name__)


@bp.post("/webhooks")
@bp.post("/webhooks/<path:topic_path>")
def receive(topic_path: str | None = None) -> tuple[Response, int]:
    """Verify, record and dispatch one delivery; the topic comes from the header, never the path.

    The sub-paths (e.g. ``/webhooks/compliance``, ``/webhooks/app/uninstalled``) let ``shopify.app.toml``
    point subscriptions at separate URIs without a second intake.
    """
    # The HMAC covers the exact bytes Shopify sent: read them before anything parses the body.
    body = request.get_data(cache=True)
    found = intake.shopify_headers(request.environ)
    # Before verification: a refused delivery is logged with the shop, topic and id it claimed.
    set_webhook_context(shop_domain=found.get("shop-domain"), topic=found.get("topic"),
                        webhook_id=found.get("webhook-id"))
    config = current_app.config
    # Queued: store the verified delivery and answer; a job worker runs the handler (README, production).
    receive = queued.accept_webhook if config["WEBHOOK_PROCESSING"] == "queued" else intake.receive_webhook
    result = receive(body, found, secret=config["SHOPIFY_API_SECRET"], old_secret=config.get("SHOPIFY_API_SECRET_OLD"))
    set_webhook_outcome(result.status)  # for /metrics: processed, queued, duplicate, ignored or failed
    return jsonify({"status": result.status}), result.http_status
