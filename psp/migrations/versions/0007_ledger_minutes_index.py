"""Ledger minutes index: balances, running sums and the web report's pages read the index alone.

It takes the place of the (client, day, id) index it extends.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26 10:13:18.440468
"""

from collections.abc import Sequence

from alembic import op


revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # A plain CREATE INDEX (no batch mode): the table and its append-only triggers stay as they are.
    op.create_index(
        'ix_ledger_entry_client_day_minutes', 'ledger_entry', ['client_id', 'effective_on', 'id', 'minutes'], unique=False
    )
    op.drop_index('ix_ledger_entry_client_day', table_name='ledger_entry')


def downgrade() -> None:
    op.create_index('ix_ledger_entry_client_day', 'ledger_entry', ['client_id', 'effective_on', 'id'], unique=False)
    op.drop_index('ix_ledger_entry_client_day_minutes', table_name='ledger_entry')
