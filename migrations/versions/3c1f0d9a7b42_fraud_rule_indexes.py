"""Indexes for the fraud rules: an advocate's recent decisions, and customers by address.

- ``ix_referrals_shop_advocate_decided``: the velocity rule counts an advocate's referrals decided in the last day
  from the index, however many the advocate had before.
- ``ix_customers_shop_address_hash``: the shared-address rule starts from the customers at a friend's address.

Revision ID: 3c1f0d9a7b42
Revises: edb6bf0a47fb
Create Date: 2026-11-23 02:10:00.000000

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '3c1f0d9a7b42'
down_revision = 'edb6bf0a47fb'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.create_index('ix_customers_shop_address_hash', ['shop_id', 'address_hash'], unique=False)

    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_shop_advocate_decided', ['shop_id', 'advocate_id', 'decided_at'],
                              unique=False)


def downgrade():
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index('ix_referrals_shop_advocate_decided')

    with op.batch_alter_table('customers', schema=None) as batch_op:
        batch_op.drop_index('ix_customers_shop_address_hash')
