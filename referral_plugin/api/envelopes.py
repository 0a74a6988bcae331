"""The response envelopes of the integrator API, for answers and for errors.

Each surface keeps the shape its seed document shows, errors included:

* Capillary "Refer Customer": ``{"response": {"status": {"success": "false", "code", "message"}}}``;
* Capillary lookup: ``{"pagination", "data": [], "warnings": [], "errors": [{"code", "message"}]}``;
* Joy: ``{"success": false, "data": null, "meta": {}, "message", "timestamp", "error": {"code", "message"}}``;
* ``/api/v1``: ``{"error": {"code", "message"}}``.

Capillary codes are numbers: the documented ones (``8015``, ``1222``...) where they apply, else the
HTTP status (``400``, ``401``, ``404``, ``405``, ``429``, ``500``). Joy and ``/api/v1`` codes are
stable upper-case words (``INVALID_API_KEY``, ``CUSTOMER_NOT_FOUND``...).
"""

from __future__ import annotations

import datetime as dt
import typing as t

from flask import jsonify
from flask import request
from flask.wrappers import Response

from referral_plugin.api.capillary_service import MAX_LIMIT
from referral_plugin.errors import ReferralPluginError

_STRING_CODES = {"TOO_MANY_REQUESTS": "RATE_LIMITED", "REQUEST_ENTITY_TOO_LARGE": "PAYLOAD_TOO_LARGE"}
#: The schemes a 401 offers (RFC 9110 requires the challenge); X-Api-Key has no registered scheme.
CHALLENGE = 'Bearer realm="referral-plugin API", Basic realm="referral-plugin API", charset="UTF-8"'


def _answer(body: dict[str, t.Any], error: ReferralPluginError) -> Response:
    """Return ``body`` as JSON, with the authentication challenge when ``error`` is a 401."""
    response = jsonify(body)
    if error.status_code == 401:
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


def numeric_code(error: ReferralPluginError) -> int:
    """Return the Capillary-style numeric code of an error."""
    return int(error.code) if error.code.isdigit() else error.status_code


def string_code(error: ReferralPluginError) -> str:
    """Return the stable word code of an error."""
    return _STRING_CODES.get(error.code, error.code)


def utc_timestamp() -> str:
    """Return now as ISO 8601 UTC with a ``Z``, millisecond precision."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def render_capillary_refer_error(error: ReferralPluginError) -> Response:
    """Render an error of ``POST /v1.1/customer/referrals``."""
    return _answer({"response": {"status": {"success": "false", "code": numeric_code(error),
                                            "message": error.message}}}, error)


def _int_arg(name: str, default: int, *, minimum: int = 0, maximum: int | None = None) -> int:
    """Return a page value as the lookup reads it (capped at ``maximum``), else ``default``."""
    raw = request.args.get(name, "").strip()
    if not (raw.isascii() and raw.isdigit() and len(raw) < 10) or int(raw) < minimum:
        return default
    return min(int(raw), maximum) if maximum is not None else int(raw)


def render_capillary_lookup_error(error: ReferralPluginError) -> Response:
    """Render an error of ``GET /v2/customers/lookup/referrals``."""
    return _answer({
        "pagination": {"limit": _int_arg("limit", 10, minimum=1, maximum=MAX_LIMIT), "offset": _int_arg("offset", 0),
                       "total": 0},
        "data": [],
        "warnings": [],
        "errors": [{"code": numeric_code(error), "message": error.message}],
    }, error)


def joy_body(data: t.Any, *, meta: dict[str, t.Any] | None = None, message: str = "OK",
             success: bool = True) -> dict[str, t.Any]:
    """Return a Joy envelope."""
    return {"success": success, "data": data, "meta": meta or {}, "message": message,
            "timestamp": utc_timestamp()}


def render_joy_error(error: ReferralPluginError) -> Response:
    """Render an error of the Joy routes."""
    body = joy_body(None, message=error.message, success=False)
    body["error"] = {"code": string_code(error), "message": error.message}
    if error.field:
        body["error"]["field"] = error.field
    return _answer(body, error)


def render_default_error(error: ReferralPluginError) -> Response:
    """Render an error of ``/api/...`` as ``{"error": {"code", "message"}}``."""
    body = error.to_dict()
    body["error"]["code"] = string_code(error)
    return _answer(body, error)
