"""The storefront through the Shopify app proxy: widget, invitations, invite-link landing."""
