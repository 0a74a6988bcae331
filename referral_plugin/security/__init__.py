"""Verification of everything Shopify signs, shop-domain sanitizing, and encryption at rest.

Pure functions over plain values: no ``flask.request`` here, so views and tests call them alike.
"""
