"""Helpdesk tickets: each ticket entry stored once per (system, ticket, entry), sync state per helpdesk.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-26 10:01:24.120089
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from ledger.models import UTCDateTime


revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('ticket_sync_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('cursor', UTCDateTime(), nullable=True),
    sa.Column('stored', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('last_success_at', UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_sync_state')),
    sa.UniqueConstraint('system', name=op.f('uq_ticket_sync_state_system'))
    )
    op.create_table('ticket_entry',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_item_id', sa.Integer(), nullable=False),
    sa.Column('system', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('ticket', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('entry', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('author', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('author_kind', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('time_taken', sa.Integer(), nullable=True),
    sa.Column('queue', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('custom_fields', sa.Text(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.ForeignKeyConstraint(['source_item_id'], ['source_item.id'], name=op.f('fk_ticket_entry_source_item_id_source_item')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_ticket_entry')),
    sa.UniqueConstraint('source_item_id', name=op.f('uq_ticket_entry_source_item_id')),
    sa.UniqueConstraint('system', 'ticket', 'entry', name='ticket_entry_unique')
    )


def downgrade() -> None:
    op.drop_table('ticket_entry')
    op.drop_table('ticket_sync_state')
