"""README.md: opens with the run and test commands and documents every setting."""

from __future__ import annotations

from pathlib import Path

from referral_plugin.config import DEFAULTS

README = (Path(__file__).resolve().parent.parent / "README.md").read_text()
CONTRACT_KEYS = ["SHOPIFY_API_KEY", "SHOPIFY_API_SECRET", "SHOPIFY_API_SECRET_OLD", "SHOPIFY_SCOPES",
                 "SHOPIFY_API_VERSION", "APP_URL", "APP_PROXY_PREFIX", "DATABASE_URL", "SECRET_KEY",
                 "DEFAULT_PHONE_REGION", "REWARD_TEST_ORDERS"]
FLASK_KEYS = {"SQLALCHEMY_ENGINE_OPTIONS", "SQLALCHEMY_TRACK_MODIFICATIONS"}


def test_readme_opens_with_the_run_and_test_commands() -> None:
    """The first two code blocks are the run command and the test command."""
    blocks = README.split("```sh\n")[1:3]
    assert [block.split("\n", 1)[0] for block in blocks] == ["bash scripts/run.sh", "bash scripts/test.sh"]


def test_readme_documents_every_setting() -> None:
    """Every contract key and every internal default appears in the configuration tables."""
    for key in CONTRACT_KEYS + [k for k in DEFAULTS if k not in FLASK_KEYS]:
        assert f"`{key}`" in README, key


def test_readme_has_the_sections_others_append_to() -> None:
    """The sections owned by other parts of the team exist, each with an introduction."""
    for heading in ("## Configuration", "## Demo mode", "## Connecting a real development store", "## Webhooks",
                    "## Integrator API", "## Error codes", "## Running in production", "## Architecture"):
        assert heading + "\n\n" in README, heading
