"""The theme app extension: valid schemas, translated labels, and the same widget.js/css the app serves."""

from __future__ import annotations

import gzip
import json
import re
import tomllib
from pathlib import Path

import pytest
from flask.testing import FlaskClient

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "extensions" / "referral-widget"
BLOCKS = sorted((EXTENSION / "blocks").glob("*.liquid"))


def _schema(block: Path) -> dict[str, object]:
    match = re.search(r"\{% schema %\}(.*?)\{% endschema %\}", block.read_text(), re.S)
    assert match, block.name
    return json.loads(match.group(1))  # type: ignore[no-any-return]


def _lookup(tree: dict[str, object], dotted: str) -> object:
    node: object = tree
    for part in dotted.split("."):
        assert isinstance(node, dict) and part in node, dotted
        node = node[part]
    return node


def test_extension_toml_is_a_theme_extension() -> None:
    """shopify.extension.toml declares a theme extension."""
    config = tomllib.loads((EXTENSION / "shopify.extension.toml").read_text())
    assert config["type"] == "theme" and config["name"]


def test_there_is_an_app_embed_and_a_section_block() -> None:
    """One block targets the body (the script) and one a section (the widget)."""
    targets = {_schema(block)["target"] for block in BLOCKS}
    assert targets == {"body", "section"}
    for block in BLOCKS:
        assert _schema(block)["javascript"] == "widget.js"


@pytest.mark.parametrize("block", BLOCKS, ids=lambda p: p.name)
def test_every_translation_key_exists(block: Path) -> None:
    """Each ``t:`` key in a schema, and each ``| t`` key in the markup, exists in every locale."""
    schema_keys = re.findall(r'"t:([a-z_.]+)"', block.read_text())
    storefront_keys = re.findall(r"'([a-z_.]+)' \| t\b", block.read_text())
    assert schema_keys
    for locale in (EXTENSION / "locales").glob("*.schema.json"):
        tree = json.loads(locale.read_text())
        for key in schema_keys:
            assert isinstance(_lookup(tree, key), str), (locale.name, key)
    for locale in (EXTENSION / "locales").glob("*.json"):
        if locale.name.endswith(".schema.json"):
            continue
        tree = json.loads(locale.read_text())
        for key in storefront_keys:
            assert isinstance(_lookup(tree, key), str), (locale.name, key)


@pytest.mark.parametrize("name", ["widget.js", "widget.css"])
def test_extension_assets_are_the_apps_own(name: str, client: FlaskClient) -> None:
    """The app serves the extension's widget.js/css themselves (static/ links to them), byte-for-byte."""
    assert (ROOT / "static" / name).resolve() == (EXTENSION / "assets" / name).resolve()
    with client.get(f"/static/{name}") as response:
        assert response.status_code == 200
        assert response.data == (EXTENSION / "assets" / name).read_bytes()


def test_widget_js_stays_under_six_kilobytes_gzipped() -> None:
    """The storefront script's budget: under 6 KB gzipped, no framework."""
    size = len(gzip.compress((ROOT / "static" / "widget.js").read_bytes(), compresslevel=9))
    assert size < 6 * 1024, size
