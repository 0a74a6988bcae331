"""Talking to Shopify: OAuth token endpoints and the Admin GraphQL client."""
