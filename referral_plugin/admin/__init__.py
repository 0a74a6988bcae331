"""The embedded merchant dashboard and its JSON endpoints."""
