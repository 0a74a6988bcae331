"""Audit as Shopify: the app proxy's published signature vectors, end to end through ``/proxy/widget``."""

from __future__ import annotations

import typing as t

import pytest
from flask import Flask
from flask.testing import FlaskClient

from referral_plugin import create_app
from referral_plugin.extensions import db
from tests.conftest import make_shop

DOCS = ("extra=1&extra=2&shop=shop-name.myshopify.com&logged_in_customer_id={customer}"
        "&path_prefix=%2Fapps%2Fawesome_reviews&timestamp=1317327555&signature={signature}")
RAILS = "shop=some-random-store.myshopify.com&path_prefix=%2Fapps%2Fmy-app&timestamp=1466106083"
VECTORS = [
    ("hush", DOCS.format(customer="1", signature="4c68c8624d737112c91818c11017d24d334b524cb5c2b8ba08daa056f7395ddb")),
    ("hush", DOCS.format(customer="", signature="e072b6d7e6622d85912a5214b860d3100dc1e73d9bc29f43796ac8c9ff8093cb")),
    ("secret", RAILS + "&signature=f5cd7233558b1c50102a6f33c0b63ad1e1072a2fc126cb58d4500f75223cefcd"),
    ("secret", RAILS + "&foo=bar&baz[1]&baz[2]=b&baz[c[0]]=whatup&baz[c[1]]=notmuch"
                       "&signature=bbf3aa60e098f08919a2ea4c64a388414f164e6a117a63b03479ac7aa9464b4f"),
]


@pytest.fixture
def vector_client(app_config: dict[str, t.Any]) -> t.Iterator[FlaskClient]:
    """Return a client of an app whose freshness window admits the vectors' 2011/2016 timestamps."""
    app: Flask = create_app({**app_config, "HMAC_TIMESTAMP_TOLERANCE": 10**10})
    with app.app_context():
        db.create_all()
        make_shop("shop-name.myshopify.com")
        make_shop("some-random-store.myshopify.com")
        yield app.test_client()
        db.session.remove()
        db.drop_all()
        db.engine.dispose()


@pytest.mark.parametrize(("secret", "query"), VECTORS, ids=["docs", "docs-anonymous", "rails", "rails-brackets"])
def test_published_proxy_vectors_serve_the_widget(vector_client: FlaskClient, secret: str, query: str) -> None:
    """Each published app-proxy vector is accepted and serves the widget; one extra parameter breaks it."""
    t.cast(Flask, vector_client.application).config["SHOPIFY_API_SECRET"] = secret
    assert vector_client.get(f"/proxy/widget?{query}").status_code == 200
    assert vector_client.get(f"/proxy/widget?{query}&evil=1").status_code == 401
