"""Read JSON that comes from outside: request bodies (refused when unusable) and webhook payloads (cleaned).

Python's ``json`` accepts three things the rest of the app cannot take: arrays or objects nested deeper
than the interpreter's stack (``RecursionError``, not ``ValueError``), ``"\\u0000"`` (PostgreSQL refuses
NUL in text) and lone surrogates such as ``"\\ud800"`` (no UTF-8 form, so neither database stores them).
A request body holding any of them is malformed, so each route answers its own 400. Shopify's payloads
are cleaned instead (NUL dropped, a lone surrogate replaced by U+FFFD): a delivery is processed rather
than failed on every retry.
"""

from __future__ import annotations

import json
import re
import threading
import typing as t
from collections.abc import Callable

import simdjson
from flask.json.provider import DefaultJSONProvider

#: Only text with one of these escapes can parse into a string we must look at; the rest skips the walk.
_SUSPECT_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
_SURROGATE = re.compile("[\ud800-\udfff]")


class UnstorableText(ValueError):
    """A JSON string holds NUL or a lone surrogate."""


def _refuse(text: str) -> str:
    if "\x00" in text or _SURROGATE.search(text):
        raise UnstorableText("JSON text holds NUL or a lone surrogate")
    return text


def _clean(text: str) -> str:
    return _SURROGATE.sub("\ufffd", text.replace("\x00", ""))


def _walk(value: t.Any, fix: Callable[[str], str]) -> t.Any:
    if isinstance(value, str):
        return fix(value)
    if isinstance(value, list):
        return [_walk(item, fix) for item in value]
    if isinstance(value, dict):
        return {fix(key): _walk(item, fix) for key, item in value.items()}
    return value


def _decode(data: str | bytes, fix: Callable[[str], str], **kwargs: t.Any) -> t.Any:
    if isinstance(data, (bytes, bytearray)):
        # Strict, unlike json.loads on bytes (surrogatepass): encoded surrogates are malformed.
        text = bytes(data).decode(json.detect_encoding(data))
    else:
        text = data
        text.encode("utf-8")  # a raw lone surrogate raises UnicodeEncodeError, a ValueError
    try:
        value = json.loads(text, **kwargs)
        return _walk(value, fix) if _SUSPECT_ESCAPE.search(text) else value
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None


def loads(data: str | bytes, **kwargs: t.Any) -> t.Any:
    """Parse a request body; raise ``ValueError`` when it is not JSON the app can use."""
    return _decode(data, _refuse, **kwargs)


def loads_cleaned(data: str | bytes) -> t.Any:
    """Parse a webhook payload, dropping NUL and replacing lone surrogates; raise ``ValueError`` when not JSON."""
    return _decode(data, _clean)


#: A body with fewer opening brackets than this cannot nest deep enough for simdjson and ``json`` to disagree.
_FAST_CHECK_BRACKETS = 500
_UTF8_BOM = b"\xef\xbb\xbf"
#: One simdjson parser per thread: a parser is not thread-safe, and it keeps its buffers between documents.
_parsers = threading.local()


def surely_object(data: bytes) -> bool:
    """Return True when ``data`` certainly is a JSON object :func:`loads_cleaned` reads; False when unsure.

    For a caller that only needs the answer (the queued webhook intake stores the bytes; its job parses them):
    simdjson validates a Shopify order (UTF-8 included) without building a Python object, several times faster
    than any parse that does. It refuses some JSON that ``json`` reads (NaN, 1e400, a lone surrogate escape) and
    accepts a leading byte-order mark, which the webhook intake's strict UTF-8 decoding refuses; only nesting near
    the interpreter's recursion limit could make it accept what ``json`` refuses. Such bodies, and everything it
    refuses, are left to the full parse.
    """
    if data.startswith(_UTF8_BOM) or data.count(b"[") + data.count(b"{") >= _FAST_CHECK_BRACKETS:
        return False
    parser = getattr(_parsers, "parser", None)
    if parser is None:
        parser = _parsers.parser = simdjson.Parser()
    try:
        # The document proxy is dropped at once: a parser refuses the next document while one is alive.
        return isinstance(parser.parse(data), simdjson.Object)
    except ValueError:
        return False
    except RuntimeError:  # a proxy outlived its call after all: start over with a fresh parser
        _parsers.parser = None
        return False


class JSONProvider(DefaultJSONProvider):
    """Flask's JSON, with request bodies read by :func:`loads` (``get_json(silent=True)`` then gives None)."""

    def loads(self, s: str | bytes, **kwargs: t.Any) -> t.Any:
        """Parse JSON text; raise ``ValueError`` when it is not JSON the app can use."""
        return loads(s, **kwargs)
