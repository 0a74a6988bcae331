"""Render storefront pages that Shopify re-renders as Liquid: escape HTML and break Liquid delimiters.

A page served as ``application/liquid`` is parsed by Shopify's Liquid engine before the browser sees it,
so a customer named ``{{ shop.metafields }}`` or ``{% render %}`` would run as code there. Every value we
print goes through :func:`liquid_escape`, which HTML-escapes it and turns ``{`` and ``}`` into character
references: Liquid never sees a delimiter, and the browser still shows the braces.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t

from flask import Flask
from jinja2 import Environment
from markupsafe import Markup
from markupsafe import escape

_ENV_KEY = "storefront_jinja_env"
# Anything the template itself might still carry (it should carry none): a Liquid opener.
_LIQUID_OPENER = re.compile(r"\{(?=[{%])")


def liquid_escape(value: t.Any) -> Markup:
    """Return ``value`` HTML-escaped with every brace replaced by a character reference."""
    if value is None:
        return Markup("")
    escaped = str(escape(value))
    return Markup(escaped.replace("{", "&#123;").replace("}", "&#125;"))


def human_date(value: t.Any) -> str:
    """Format an ISO date (or date) as ``Dec 1, 2026``; anything else is returned as text."""
    if isinstance(value, str):
        try:
            value = dt.date.fromisoformat(value[:10])
        except ValueError:
            return str(value)
    if isinstance(value, dt.datetime):
        value = value.date()
    if isinstance(value, dt.date):
        return f"{value:%b} {value.day}, {value.year}"
    return "" if value is None else str(value)


def neutralize_liquid(html: str) -> str:
    """Break any ``{{`` or ``{%`` left in a rendered page, so Liquid treats it as text."""
    return _LIQUID_OPENER.sub("&#123;", html)


def storefront_env(app: Flask) -> Environment:
    """Return the app's Jinja environment with every ``{{ }}`` output passed through :func:`liquid_escape`."""
    env = app.extensions.get(_ENV_KEY)
    if env is None:
        # An overlay shares the loader, filters and globals but finalizes output our way.
        env = app.jinja_env.overlay(finalize=liquid_escape)
        env.filters["liquid_escape"] = liquid_escape
        env.filters["human_date"] = human_date
        app.extensions[_ENV_KEY] = env
    return t.cast(Environment, env)


def render_liquid_safe(app: Flask, template: str, **context: t.Any) -> str:
    """Render a storefront template so that nothing in it can act as Liquid."""
    env = storefront_env(app)
    app.update_template_context(context)
    return neutralize_liquid(str(env.get_template(template).render(context)))
