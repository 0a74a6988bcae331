"""Reading JSON from outside: the quick object check agrees with the full parse."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st

from referral_plugin.json_input import loads_cleaned
from referral_plugin.json_input import surely_object
from tests.conftest import run_at_once

ODD_BODIES = [
    b'{"a": NaN}', b'{"a": Infinity}', b'{"a": 1e400}', b'{"a": "\\ud800"}', b'{"a": "\\u0000"}',
    b'{"a": 123456789012345678901234567890}', b'\xef\xbb\xbf{"a": 1}', b'{"a": "\x01"}', b'{"a": 01}', b'{"a": 1,}',
    b'{"a": 1}\x00', b'{"a": "\xed\xa0\x80"}', b'\x0c{"a": 1}', b'[1, 2]', b'"text"', b'{"a": true, "a": false}',
    b' \t\r\n{"a": "\\u00e9"} ', b'{"a": [' + b"[" * 995 + b"]" * 995 + b"]}",
]


def full_parse_accepts_object(body: bytes) -> bool:
    try:
        return isinstance(loads_cleaned(body.decode("utf-8")), dict)
    except ValueError:
        return False


@pytest.mark.parametrize("body", ODD_BODIES)
def test_quick_check_never_accepts_what_the_full_parse_refuses(body: bytes) -> None:
    """Every body the quick check is sure of, the full parse reads as an object too; doubt falls back to it."""
    assert not surely_object(body) or full_parse_accepts_object(body)


def test_quick_check_is_sure_of_a_shopify_order() -> None:
    """The usual webhook body takes the quick path."""
    with open("tests/fixtures/shopify/orders_paid.json", "rb") as handle:
        assert surely_object(handle.read())


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300)
@given(json_values)
def test_quick_check_agrees_with_the_full_parse_on_generated_json(value: object) -> None:
    """On generated JSON (NaN, huge integers and lone surrogates included) sure means the full parse agrees."""
    body = json.dumps(value).encode("utf-8", "surrogatepass")
    assert not surely_object(body) or full_parse_accepts_object(body)


#: Bytes JSON is made of, and a few it must not hold (raw controls, a lone continuation byte, a BOM's first byte).
JSONISH = st.sampled_from(list(b'{}[]":,0123456789.eE+- truefalsnl\\u\t\n\r') + [0, 1, 0x7F, 0x80, 0xEF, 0xFF])


@settings(max_examples=500)
@given(st.lists(JSONISH, max_size=40).map(bytes))
def test_quick_check_agrees_with_the_full_parse_on_arbitrary_bytes(body: bytes) -> None:
    """On byte soup that is sometimes JSON (and mostly not) sure still means the full parse reads an object."""
    assert not surely_object(body) or full_parse_accepts_object(body)


def test_quick_check_refuses_a_byte_order_mark_the_intake_refuses() -> None:
    """simdjson skips a UTF-8 BOM, the intake's strict decoding does not: the check leaves it to the full parse."""
    body = b'\xef\xbb\xbf{"a": 1}'
    assert not full_parse_accepts_object(body)
    assert not surely_object(body)


def test_quick_check_answers_right_from_many_threads_at_once() -> None:
    """Each thread has its own parser: concurrent checks of good and bad bodies never mix their answers."""
    with open("tests/fixtures/shopify/orders_paid.json", "rb") as handle:
        order = handle.read()
    bodies = [(order, True), (b'{"a": [1, 2}', False), (b"[1, 2]", False), (b'{"b": "\\u00e9"}', True)]
    wrong: list[bytes] = []

    def check() -> None:
        for _ in range(200):
            for body, expected in bodies:
                if surely_object(body) is not expected:
                    wrong.append(body)

    run_at_once(check, [()] * 4)
    assert wrong == []
