"""``GET /api/openapi.json``: the OpenAPI 3.0 document of the integrator API (public, no key needed)."""

from __future__ import annotations

import typing as t

from flask import Blueprint
from flask import current_app
from flask import jsonify
from flask.wrappers import Response

bp = Blueprint("api_docs", __name__, url_prefix="/api")

JSON = "application/json"
SECURITY: list[dict[str, list[str]]] = [{"ApiKeyHeader": []}, {"BearerKey": []}, {"BasicKey": []},
                                        {"JoyAppKey": []}]


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _rate_headers(*, retry: bool = False) -> dict[str, t.Any]:
    names = ["RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset", "RateLimit-Policy"]
    if retry:
        names.append("Retry-After")
    return {name: {"$ref": f"#/components/headers/{name}"} for name in names}


def _json(schema: dict[str, t.Any], description: str, *, headers: bool = True,
          retry: bool = False) -> dict[str, t.Any]:
    response: dict[str, t.Any] = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = _rate_headers(retry=retry)
    return response


def _errors(envelope: str, codes: dict[str, str]) -> dict[str, t.Any]:
    """Return the error responses of one envelope: the route's own codes plus 401/404/405/429/500."""
    common = {
        "401": "Missing, wrong or revoked API key, or the key's shop is uninstalled.",
        "404": "No such route (or resource).",
        "405": "Method not allowed on this route.",
        "413": "Request body over 2 MiB.",
        "429": "Rate limit of the key exceeded; retry after `Retry-After` seconds.",
        "500": "Unexpected error (never on purpose).",
    }
    merged = {**common, **codes}
    responses = {status: _json(_ref(envelope), description, retry=status == "429")
                 for status, description in sorted(merged.items())}
    responses["401"]["headers"]["WWW-Authenticate"] = {"$ref": "#/components/headers/WWW-Authenticate"}
    return responses


def _path_param(name: str, description: str) -> dict[str, t.Any]:
    return {"name": name, "in": "path", "required": True, "schema": {"type": "string"}, "description": description}


def _query(name: str, description: str, schema: dict[str, t.Any], *, required: bool = False) -> dict[str, t.Any]:
    return {"name": name, "in": "query", "required": required, "schema": schema, "description": description}


def _schemas() -> dict[str, t.Any]:
    string_or_null = {"type": "string", "nullable": True}
    capillary_status = {
        "type": "object",
        "properties": {"success": {"type": "string", "enum": ["true", "false"]}, "code": {"type": "integer"},
                       "message": {"type": "string"}},
        "required": ["success", "code", "message"],
    }
    referral_in = {"type": "object", "properties": {
        "id": {"type": "string"}, "invited_on": {"type": "string", "description": "Echoed back; stored as the "
                                                 "invitation's external reference."},
        "name": {"type": "string"}, "identifier": {"type": "string", "description": "Mobile or email of the friend."}}}
    referral_type_in = {"type": "object", "properties": {
        "type": {"type": "string", "enum": ["MOBILE", "EMAIL"]},
        "referral": {"type": "array", "items": referral_in}}}
    refer_customer_in = {"type": "object", "properties": {
        "mobile": {"type": "string"}, "email": {"type": "string"},
        "external_id": {"type": "string", "description": "Shopify customer id."},
        "referrals": {"type": "object", "properties": {
            "campaign_token": {"type": "string", "description": "Omitted: the default campaign."},
            "referral_type": {"oneOf": [referral_type_in, {"type": "array", "items": referral_type_in}]}}}}}
    identifier = {"type": "object", "properties": {"type": {"type": "string"}, "value": {"type": "string"}}}
    reward = {"type": "object", "properties": {"kind": {"type": "string",
                                                        "enum": ["points", "percentage", "fixed_amount"]},
                                               "value": {"type": "number"}}}
    joy_success = {"type": "object", "properties": {
        "success": {"type": "boolean"}, "data": {}, "meta": {"type": "object"},
        "message": {"type": "string"}, "timestamp": {"type": "string", "format": "date-time"}},
        "required": ["success", "data", "meta", "message", "timestamp"]}
    return {
        "CapillaryStatus": capillary_status,
        "CapillaryReferRequest": {"type": "object", "required": ["root"], "properties": {"root": {
            "type": "object", "required": ["customer"],
            "properties": {"customer": {"type": "array", "items": refer_customer_in}}}}},
        "CapillaryReferResponse": {"type": "object", "properties": {"response": {"type": "object", "properties": {
            "status": _ref("CapillaryStatus"),
            "customers": {"type": "object", "properties": {"customer": {"type": "array", "items": {
                "type": "object", "properties": {
                    "email": string_or_null, "mobile": string_or_null, "external_id": string_or_null,
                    "firstname": string_or_null, "lastname": string_or_null,
                    "referrals": {"type": "object", "properties": {"referral_type": {"type": "array", "items": {
                        "type": "object", "properties": {
                            "type": {"type": "string"},
                            "referral": {"type": "array", "items": {"allOf": [referral_in, {
                                "type": "object", "properties": {"status": _ref("CapillaryStatus")}}]}}}}}}},
                    "item_status": _ref("CapillaryStatus")}}}}}}}}},
        "CapillaryReferError": {"type": "object", "properties": {"response": {"type": "object", "properties": {
            "status": _ref("CapillaryStatus")}}}},
        "LookupResponse": {"type": "object", "properties": {
            "pagination": {"type": "object", "properties": {"limit": {"type": "integer"},
                                                            "offset": {"type": "integer"},
                                                            "total": {"type": "integer"}}},
            "data": {"type": "array", "items": {"type": "object", "properties": {
                "customer": {"type": "object", "properties": {
                    "id": {"type": "integer", "format": "int64"},
                    "profiles": {"type": "array", "items": {"type": "object", "properties": {
                        "firstName": {"type": "string"}, "lastName": {"type": "string"},
                        "fields": {"type": "object"}, "allFields": {"type": "object"},
                        "identifiers": {"type": "array", "items": identifier},
                        "commChannels": {"type": "array", "items": {"type": "object"}},
                        "userId": {"type": "integer", "format": "int64"}, "accountId": {"type": "string"},
                        "autoUpdateTime": {"type": "string"},
                        "identifiersAll": {"type": "array", "items": identifier}}}}}},
                "referralCode": {"type": "string"},
                "invitees": {"type": "array", "description": "Invitations sent by the customer "
                             "(type, identifier, name, invitedOn, status invited|joined|purchased).",
                             "items": {"type": "object"}},
                "referee": {"type": "array", "description": "Friends bound to the customer, with the "
                            "referral's status and reason.", "items": {"type": "object"}},
                "incentives": {"type": "array", "description": "The customer's ledger rows in the campaign "
                               "(grants, holds, releases, issues, reversals).", "items": {"type": "object"}}}}},
            "warnings": {"type": "array", "items": {"type": "object"}},
            "errors": {"type": "array", "items": _ref("LookupErrorItem")}}},
        "LookupErrorItem": {"type": "object", "properties": {"code": {"type": "integer"},
                                                             "message": {"type": "string"}}},
        "JoySuccess": joy_success,
        "JoyError": {"allOf": [joy_success, {"type": "object", "properties": {"error": {
            "type": "object", "properties": {"code": {"type": "string"}, "message": {"type": "string"},
                                             "field": {"type": "string"}}}}}]},
        "Campaign": {"type": "object", "properties": {
            "token": {"type": "string"}, "name": {"type": "string"},
            "status": {"type": "string", "enum": ["active", "paused", "archived"]},
            "running": {"type": "boolean"}, "isDefault": {"type": "boolean"},
            "advocateReward": reward, "friendReward": reward, "minOrderSubtotal": {"type": "number"},
            "newCustomersOnly": {"type": "boolean"}, "advocateCap": {"type": "integer", "nullable": True},
            "holdDays": {"type": "integer"}, "startsAt": string_or_null, "endsAt": string_or_null}},
        "Error": {"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "string"}, "message": {"type": "string"}, "field": {"type": "string"}}}}},
    }


def _operations() -> dict[str, dict[str, t.Any]]:
    customer_id = _path_param("customer_id", "The Shopify customer id.")
    return {
        "/v1.1/customer/referrals": {"post": {
            "tags": ["Capillary"], "operationId": "referCustomer", "summary": "Refer Customer",
            "description": "Invite friends of customers (found by mobile, email or external_id) by MOBILE or "
                           "EMAIL. Per-referral status codes: 1000 Refer was successful, 1701 Invalid Identifier "
                           "for the type, 1206 Referral type is not supported; per-customer item_status: 1000, "
                           "1012 customer not found, 1206, 1222 invalid campaign token. Idempotent per "
                           "advocate, campaign and friend.",
            "parameters": [
                _query("mobile", "Mobile of the referring customer, for a customer element naming nobody itself.",
                       {"type": "string"}),
                _query("email", "Email of the referring customer, for a customer element naming nobody itself.",
                       {"type": "string"}),
            ],
            "requestBody": {"required": True, "content": {JSON: {"schema": _ref("CapillaryReferRequest")}}},
            "responses": {"200": _json(_ref("CapillaryReferResponse"), "Processed; see the per-item statuses."),
                          **_errors("CapillaryReferError", {
                              "400": "Body without a root.customer list, over 100 customers or 100 referrals "
                                     "per customer, or a referrals element that is not an object (code 400)."})},
        }},
        "/v2/customers/lookup/referrals": {"get": {
            "tags": ["Capillary"], "operationId": "lookupReferrals", "summary": "Get Referrals (Lookup)",
            "description": "Several identifiers may be sent comma-separated; they are tried in the order id, "
                           "externalId, mobile, email and the first one naming exactly one customer decides. "
                           "limit/offset page invitees, referee and incentives; total is the longest list.",
            "parameters": [
                _query("source", "Source system (INSTORE, ECOMMERCE, WEBSITE, MOBILE_APP, WECHAT, ...).",
                       {"type": "string"}, required=True),
                _query("identifierName", "Comma-separated: mobile, email, externalId, id.", {"type": "string"},
                       required=True),
                _query("identifierValue", "Comma-separated values, in the same order.", {"type": "string"},
                       required=True),
                _query("campaignToken", "Campaign token; omitted: the default campaign.", {"type": "string"}),
                _query("limit", "Records per page (1-100).", {"type": "integer", "default": 10, "minimum": 1,
                                                              "maximum": 100}),
                _query("offset", "Records skipped.", {"type": "integer", "default": 0, "minimum": 0}),
            ],
            "responses": {"200": _json(_ref("LookupResponse"), "The customer's referrals."),
                          **_errors("LookupResponse", {
                              "400": "8003 invalid source, 8013 invalid identifier, 1222 invalid campaign "
                                     "token, 400 invalid limit/offset.",
                              "404": "8015 customer not found for the given identifiers (or no such route)."})},
        }},
        "/rest_api/v2/referrals/invitations": {"post": {
            "tags": ["Joy"], "operationId": "generateReferralInvitation", "summary": "Generate referral invitation",
            "requestBody": {"required": True, "content": {JSON: {"schema": {
                "type": "object", "required": ["email"],
                "properties": {"email": {"type": "string", "format": "email"},
                               "campaignToken": {"type": "string"}}}}}},
            "responses": {"200": _json(_ref("JoySuccess"), "data: inviteLink, referralCode, customerId, email, "
                                       "campaignToken."),
                          **_errors("JoyError", {"400": "VALIDATION_ERROR, INVALID_EMAIL or INVALID_CAMPAIGN.",
                                                 "404": "CUSTOMER_NOT_FOUND (or NOT_FOUND for a route)."})},
        }},
        "/rest_api/v2/referrals/customers/{customer_id}/referrers": {"get": {
            "tags": ["Joy"], "operationId": "getCustomerReferrers", "summary": "Get customer referrers",
            "parameters": [customer_id],
            "responses": {"200": _json(_ref("JoySuccess"), "data: list of referrers; meta.count."),
                          **_errors("JoyError", {"404": "CUSTOMER_NOT_FOUND (or NOT_FOUND for a route)."})},
        }},
        "/rest_api/v2/referrals/customers/{customer_id}/summary": {"get": {
            "tags": ["Joy"], "operationId": "getCustomerReferralSummary", "summary": "Get customer referral summary",
            "parameters": [customer_id],
            "responses": {"200": _json(_ref("JoySuccess"), "data: totalRedeemCoupon, totalPointEarnRefer, "
                                       "pointsBalance, invited, joined, purchased, pending, referrals, ..."),
                          **_errors("JoyError", {"404": "CUSTOMER_NOT_FOUND (or NOT_FOUND for a route)."})},
        }},
        "/rest_api/v2/referrals/analytics": {"get": {
            "tags": ["Joy"], "operationId": "getReferralAnalytics", "summary": "Get referral analytics",
            "parameters": [
                _query("startDate", "First shop day (YYYY-MM-DD); default 29 days before endDate.",
                       {"type": "string", "format": "date"}),
                _query("endDate", "Last shop day (YYYY-MM-DD); default today.", {"type": "string", "format": "date"}),
            ],
            "responses": {"200": _json(_ref("JoySuccess"), "data: countCouponCodeUsage, countInvitations, "
                                       "countClicks, countSignups, referralRevenue, pointsAwarded, ..."),
                          **_errors("JoyError", {"400": "INVALID_DATE, INVALID_RANGE or RANGE_TOO_LONG."})},
        }},
        "/api/v1/campaigns": {"get": {
            "tags": ["Campaigns"], "operationId": "listCampaigns", "summary": "List the shop's campaigns",
            "responses": {"200": _json({"type": "object", "properties": {"data": {"type": "array",
                                                                                  "items": _ref("Campaign")}}},
                                       "The campaigns, the default first."),
                          **_errors("Error", {})},
        }},
        "/api/openapi.json": {"get": {
            "tags": ["Meta"], "operationId": "openapi", "summary": "This document", "security": [],
            "responses": {"200": {"description": "OpenAPI 3 document.", "content": {JSON: {"schema": {
                "type": "object"}}}}},
        }},
    }


def build_document(server_url: str, rate_limit: str) -> dict[str, t.Any]:
    """Return the OpenAPI document of every integrator API route."""
    header = {"schema": {"type": "integer"}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "referral-plugin integrator API",
            "version": "1.0.0",
            "description": "Capillary- and Joy-compatible referral API of a Shopify shop. Authenticate with a shop "
                           "API key (`flask --app app api-key create <shop>`): `X-Api-Key`, `Authorization: "
                           f"Bearer`, or HTTP Basic with the key as password. Rate limit per key: {rate_limit}, "
                           "announced in RateLimit-* headers; 429 carries Retry-After.",
        },
        "servers": [{"url": server_url}],
        "security": SECURITY,
        "paths": _operations(),
        "components": {
            "securitySchemes": {
                "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
                "BearerKey": {"type": "http", "scheme": "bearer", "description": "The API key as bearer token."},
                "BasicKey": {"type": "http", "scheme": "basic", "description": "Any username, the key as password."},
                "JoyAppKey": {"type": "apiKey", "in": "header", "name": "X-Joy-Loyalty-App-Key",
                              "description": "Joy's header, accepted as an alias of X-Api-Key."},
            },
            "headers": {
                "RateLimit-Limit": {"description": "Requests allowed in the window.", **header},
                "RateLimit-Remaining": {"description": "Requests left in the window.", **header},
                "RateLimit-Reset": {"description": "Seconds until the window resets.", **header},
                "RateLimit-Policy": {"description": "The limit and its window, e.g. `1000;w=60`.",
                                     "schema": {"type": "string"}},
                "Retry-After": {"description": "Seconds to wait before retrying (429 only).", **header},
                "WWW-Authenticate": {"description": "The accepted schemes (401 only): Bearer and Basic.",
                                     "schema": {"type": "string"}},
            },
            "schemas": _schemas(),
        },
    }


@bp.get("/openapi.json", merge_slashes=False)
def openapi_document() -> Response:
    """Return the OpenAPI document."""
    config = current_app.config
    return jsonify(build_document(str(config["APP_URL"]), str(config.get("API_RATE_LIMIT") or "1000 per minute")))
