"""Decode App Bridge session tokens: HS256 JWTs signed with the client secret.

Mirrors Shopify's libraries: HS256 only, ``aud`` must be the client id, 10 s of leeway (App Bridge
often mints ``nbf`` a second or two in the future), ``iss`` and ``dest`` must name the same, valid
shop, and the previous secret is still accepted while a rotation is under way.

``joserfc`` does the JOSE work (``authlib.jose`` is deprecated in favour of it by the same authors).
"""

from __future__ import annotations

import time
import typing as t
from urllib.parse import urlsplit

from joserfc import jwt
from joserfc.errors import BadSignatureError
from joserfc.errors import ExpiredTokenError
from joserfc.errors import InvalidClaimError
from joserfc.errors import JoseError
from joserfc.errors import MissingClaimError
from joserfc.jwk import OctKey

from referral_plugin.errors import InvalidSessionToken
from referral_plugin.security.shop_domain import sanitize_shop_domain

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ("exp", "nbf", "iss", "dest", "aud", "sub")


def _key(secret: str) -> OctKey:
    """Wrap the client secret as an HMAC key.

    ``OctKey.import_key`` warns about secrets shorter than 112 bits; Shopify's client secrets are far
    longer, and the published test vectors use the short ``hush``, so the key is built directly.
    """
    raw = secret.encode()
    if not raw:
        raise InvalidSessionToken("the app has no client secret to verify session tokens with")
    return OctKey(raw, raw)


def _verify_signature(token: str, secrets: t.Sequence[str]) -> jwt.Token:
    """Return the decoded token signed by one of ``secrets``, trying them in order."""
    last_error: Exception | None = None
    for secret in secrets:
        try:
            return jwt.decode(token, _key(secret), algorithms=[ALGORITHM])
        except BadSignatureError as exc:
            last_error = exc
        except JoseError as exc:
            # Wrong algorithm, malformed segments, bad JSON: no other secret can fix these.
            raise InvalidSessionToken(f"session token is malformed or uses a disallowed algorithm ({exc.error})") \
                from exc
        except (ValueError, TypeError) as exc:
            raise InvalidSessionToken("session token is malformed") from exc
    raise InvalidSessionToken("session token signature verification failed") from last_error


#: Shopify's ``sub`` is a numeric user id or a GID (a few dozen characters); audit actors store
#: ``shopify-user:{sub}`` in 255 characters, so anything longer could not be written.
MAX_SUB_LENGTH = 128


def _is_user_id(value: t.Any) -> bool:
    """Tell whether ``sub`` is usable text: printable and short enough to name an audit actor."""
    # isprintable() is False for NUL, other controls and lone surrogates alike.
    return isinstance(value, str) and 0 < len(value) <= MAX_SUB_LENGTH and value.isprintable()


def _shop_of(url: t.Any, claim: str) -> str:
    """Return the canonical shop domain an ``iss``/``dest`` URL points at."""
    if not isinstance(url, str) or not url.startswith("https://"):
        raise InvalidSessionToken(f"session token {claim} is not an https shop URL")
    try:
        parts = urlsplit(url)
    except ValueError:
        # An unbalanced ``[`` (an IPv6 literal) makes urlsplit raise: a bad claim, not a 500.
        raise InvalidSessionToken(f"session token {claim} is not a valid shop URL") from None
    shop = sanitize_shop_domain(parts.netloc)
    if shop is None or parts.netloc.lower() != shop:
        raise InvalidSessionToken(f"session token {claim} is not a valid shop domain")
    return shop


def decode_session_token(
    token: str, api_key: str, secret: str, old_secret: str | None = None, leeway: int = 10,
    *, now: int | None = None,
) -> dict[str, t.Any]:
    """Verify a session token and return its claims, with the shop domain added as ``shop``.

    :raise InvalidSessionToken: naming what is wrong (signature, algorithm, expiry, audience, issuer...).
    """
    if not token or token.count(".") != 2:
        raise InvalidSessionToken("session token is missing or not a JWT")
    secrets = [secret] + ([old_secret] if old_secret else [])
    decoded = _verify_signature(token, secrets)
    claims = dict(decoded.claims)

    registry = jwt.JWTClaimsRegistry(
        now=int(time.time()) if now is None else now,
        leeway=leeway,
        **{name: {"essential": True} for name in REQUIRED_CLAIMS},  # type: ignore[arg-type]
    )
    try:
        registry.validate(claims)
    except ExpiredTokenError as exc:
        raise InvalidSessionToken("session token has expired") from exc
    except MissingClaimError as exc:
        raise InvalidSessionToken(f"session token lacks a required claim ({exc.description})") from exc
    except InvalidClaimError as exc:
        raise InvalidSessionToken(f"session token has an invalid claim ({exc.description})") from exc
    except JoseError as exc:
        raise InvalidSessionToken(f"session token claims are invalid ({exc.error})") from exc

    audience = claims["aud"]
    audiences = [audience] if isinstance(audience, str) else list(audience)
    if api_key not in audiences:
        raise InvalidSessionToken("session token audience does not match this app's client id")
    if not _is_user_id(claims["sub"]):
        # The staff user id names audit actors and keys the dashboard's CSRF token: text that cannot be
        # stored or encoded (a NUL, a lone surrogate) would turn every dashboard page into a 500.
        raise InvalidSessionToken("session token sub is not a user id")
    issuer_shop = _shop_of(claims["iss"], "iss")
    dest_shop = _shop_of(claims["dest"], "dest")
    if issuer_shop != dest_shop:
        raise InvalidSessionToken("session token issuer and destination are different shops")
    claims["shop"] = dest_shop
    return claims
