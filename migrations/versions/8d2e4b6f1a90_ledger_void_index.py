"""Partial index of void ledger rows by shop, for the dashboard's points on hold net of refunds during a hold.

- ``ix_ledger_entries_shop_voids``: the summary subtracts the void rows of held referrals, found from the shop's
  few void rows rather than by looking up every held referral's ledger rows.

Revision ID: 8d2e4b6f1a90
Revises: 3c1f0d9a7b42
Create Date: 2026-11-23 04:55:00.000000

"""
import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '8d2e4b6f1a90'
down_revision = '3c1f0d9a7b42'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.create_index('ix_ledger_entries_shop_voids', ['shop_id', 'referral_id', 'points'], unique=False,
                              sqlite_where=sa.text("entry_type = 'void'"),
                              postgresql_where=sa.text("entry_type = 'void'"))


def downgrade():
    with op.batch_alter_table('ledger_entries', schema=None) as batch_op:
        batch_op.drop_index('ix_ledger_entries_shop_voids', sqlite_where=sa.text("entry_type = 'void'"),
                            postgresql_where=sa.text("entry_type = 'void'"))
