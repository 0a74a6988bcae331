"""The Shopify Admin GraphQL client: one injectable class over a ``requests.Session``.

Failures come back typed (:mod:`referral_plugin.errors`): ``errors`` in the body are a
``ShopifyAPIError``, a mutation's ``userErrors`` are ``ShopifyUserErrors``, a 401 is
``ShopifyUnauthorized`` (the token is revoked), and throttling (``THROTTLED`` with 200 or 429, and
429/503) is retried up to ``max_retries`` times honouring ``Retry-After`` before ``ShopifyThrottled``.
"""

from __future__ import annotations

import logging
import math
import time
import typing as t

import requests
from flask import current_app
from flask import has_app_context

from referral_plugin.errors import ShopifyAPIError
from referral_plugin.errors import ShopifyThrottled
from referral_plugin.errors import ShopifyUnauthorized
from referral_plugin.errors import ShopifyUserErrors
from referral_plugin.models import Shop

logger = logging.getLogger(__name__)

DEFAULT_RETRY_AFTER = 1.0
#: Never sleep longer than this on one retry, whatever Shopify asks: a job can run again later.
MAX_RETRY_AFTER = 30.0
_RETRY_STATUSES = frozenset({429, 503})


class ShopifyClient:
    """Call one shop's Admin GraphQL API with its offline access token."""

    def __init__(
        self,
        shop_domain: str,
        access_token: str,
        *,
        api_version: str,
        session: requests.Session | None = None,
        max_retries: int = 3,
        sleep: t.Callable[[float], None] = time.sleep,
        timeout: float = 10,
        base_url: str | None = None,
        on_unauthorized: t.Callable[[], None] | None = None,
    ) -> None:
        self.shop_domain = shop_domain
        self._access_token = access_token
        self.api_version = api_version
        self.session = session if session is not None else _default_session()
        self.max_retries = max_retries
        self.sleep = sleep
        self.timeout = timeout
        self.base_url = (base_url or _default_base_url(shop_domain)).rstrip("/")
        self.on_unauthorized = on_unauthorized

    def __repr__(self) -> str:
        return f"<ShopifyClient {self.shop_domain} {self.api_version}>"

    @property
    def graphql_url(self) -> str:
        """Return the versioned GraphQL endpoint."""
        return f"{self.base_url}/admin/api/{self.api_version}/graphql.json"

    def graphql(self, query: str, variables: t.Mapping[str, t.Any] | None = None) -> dict[str, t.Any]:
        """Run a query or mutation and return its ``data``.

        :raise ShopifyUnauthorized: on 401 (after ``on_unauthorized`` ran).
        :raise ShopifyThrottled: when still throttled after ``max_retries`` retries.
        :raise ShopifyAPIError: on ``errors``, other HTTP failures, network errors or non-JSON answers.
        """
        payload: dict[str, t.Any] = {"query": query}
        if variables is not None:
            payload["variables"] = dict(variables)
        headers = {
            "X-Shopify-Access-Token": self._access_token,
            "Content-Type": "application/json",
            "Accept": "application/json",
        }
        retries = 0
        while True:
            try:
                response = self.session.post(self.graphql_url, json=payload, headers=headers, timeout=self.timeout)
            except requests.RequestException as exc:
                raise ShopifyAPIError(f"Could not reach Shopify for {self.shop_domain}: {type(exc).__name__}") \
                    from exc

            if response.status_code == 401:
                if self.on_unauthorized is not None:
                    self.on_unauthorized()
                raise ShopifyUnauthorized(f"Shopify refused the access token of {self.shop_domain} (401)")

            body = _json_or_none(response)
            wait = self._throttle_wait(response, body)
            if wait is not None:
                if retries >= self.max_retries:
                    raise ShopifyThrottled(
                        f"Shopify is still throttling {self.shop_domain} after {retries} retries"
                    )
                retries += 1
                logger.info("Shopify throttled %s; retry %d in %.2fs", self.shop_domain, retries, wait)
                self.sleep(wait)
                continue

            if response.status_code != 200:
                raise ShopifyAPIError(
                    f"Shopify answered HTTP {response.status_code} for {self.shop_domain}",
                    details={"status": response.status_code},
                )
            if not isinstance(body, dict):
                raise ShopifyAPIError(f"Shopify's answer for {self.shop_domain} was not a JSON object")
            errors = body.get("errors")
            if errors:
                raise ShopifyAPIError(
                    f"Shopify GraphQL errors: {_error_messages(errors)}", details={"errors": errors}
                )
            data = body.get("data")
            return data if isinstance(data, dict) else {}

    def mutate(self, query: str, variables: t.Mapping[str, t.Any] | None, root: str) -> dict[str, t.Any]:
        """Run a mutation and return ``data[root]``.

        :raise ShopifyUserErrors: when ``data[root]["userErrors"]`` is not empty.
        """
        data = self.graphql(query, variables)
        result = data.get(root)
        if not isinstance(result, dict):
            raise ShopifyAPIError(f"Shopify's answer has no {root!r} result")
        user_errors = result.get("userErrors") or []
        if user_errors:
            raise ShopifyUserErrors(
                f"{root}: {_error_messages(user_errors)}", user_errors=list(user_errors)
            )
        return result

    def _throttle_wait(self, response: requests.Response, body: t.Any) -> float | None:
        """Return how long to wait before retrying, or None when the answer is not a throttle."""
        throttled_body = isinstance(body, dict) and _is_throttled(body.get("errors"))
        if response.status_code not in _RETRY_STATUSES and not throttled_body:
            return None
        retry_after = _parse_retry_after(response.headers.get("Retry-After"))
        if retry_after is None and throttled_body:
            retry_after = _cost_wait(body)
        return min(MAX_RETRY_AFTER, DEFAULT_RETRY_AFTER if retry_after is None else retry_after)


def _default_session() -> requests.Session:
    """Return the app-wide session (injected, or created once per app so connections are reused)."""
    if not has_app_context():
        return requests.Session()
    session = current_app.extensions.get("shopify_http_session")
    if not isinstance(session, requests.Session):
        session = requests.Session()
        current_app.extensions["shopify_http_session"] = session
    return session


def _default_base_url(shop_domain: str) -> str:
    template = "https://{shop}"
    if has_app_context():
        template = str(current_app.config.get("SHOPIFY_BASE_URL_TEMPLATE") or template)
    return template.format(shop=shop_domain)


def _json_or_none(response: requests.Response) -> t.Any:
    try:
        return response.json()
    except ValueError:
        return None


def _is_throttled(errors: t.Any) -> bool:
    if not isinstance(errors, list):
        return False
    return any(
        isinstance(error, dict) and isinstance(error.get("extensions"), dict)
        and error["extensions"].get("code") == "THROTTLED"
        for error in errors
    )


def _parse_retry_after(value: str | None) -> float | None:
    try:
        seconds = float(value) if value else None
    except ValueError:
        return None
    if seconds is None or not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def _cost_wait(body: dict[str, t.Any]) -> float | None:
    """Estimate the wait from the leaky bucket: the points missing divided by the restore rate."""
    try:
        cost = body["extensions"]["cost"]
        status = cost["throttleStatus"]
        missing = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
        rate = float(status["restoreRate"])
    except (KeyError, TypeError, ValueError):
        return None
    if rate <= 0:
        return None
    return max(missing / rate, 0.0) or None


def _error_messages(errors: t.Any) -> str:
    if isinstance(errors, str):
        return errors
    if isinstance(errors, list):
        messages = [str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors]
        return "; ".join(messages)
    return str(errors)


def client_for(shop: Shop, **kwargs: t.Any) -> ShopifyClient:
    """Return a client for ``shop``: its token decrypted (refreshed first when about to expire).

    A 401 from Shopify marks the shop's token revoked, so the next embedded load exchanges a new one.

    :raise ShopifyUnauthorized: when the shop has no live token.
    """
    from referral_plugin import installs

    token = installs.access_token_for(shop)
    kwargs.setdefault("api_version", current_app.config["SHOPIFY_API_VERSION"])
    kwargs.setdefault("on_unauthorized", lambda: installs.mark_token_revoked(shop))
    return ShopifyClient(shop.shopify_domain, token, **kwargs)
