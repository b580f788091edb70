"""Outgoing mail: every message we send, and the renewal notices given per block.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26 08:48:46.370508
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from ledger.models import UTCDateTime


revision: str = '0003'
down_revision: str | None = '0002'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('outgoing_mail',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=True),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('subject', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('sent_at', UTCDateTime(), nullable=True),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_outgoing_mail_client_id_client')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outgoing_mail')),
    sa.UniqueConstraint('message_id', name=op.f('uq_outgoing_mail_message_id'))
    )
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_outgoing_mail_client_id'), ['client_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_outgoing_mail_status'), ['status'], unique=False)

    op.create_table('renewal_notice',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('block_id', sa.Integer(), nullable=False),
    sa.Column('threshold', sa.Integer(), nullable=False),
    sa.Column('balance_minutes', sa.Integer(), nullable=False),
    sa.Column('outgoing_mail_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['block_id'], ['block.id'], name=op.f('fk_renewal_notice_block_id_block')),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_renewal_notice_client_id_client')),
    sa.ForeignKeyConstraint(['outgoing_mail_id'], ['outgoing_mail.id'], name=op.f('fk_renewal_notice_outgoing_mail_id_outgoing_mail')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_renewal_notice')),
    sa.UniqueConstraint('client_id', 'block_id', 'threshold', name='renewal_notice_once')
    )


def downgrade() -> None:
    op.drop_table('renewal_notice')
    with op.batch_alter_table('outgoing_mail', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_outgoing_mail_status'))
        batch_op.drop_index(batch_op.f('ix_outgoing_mail_client_id'))

    op.drop_table('outgoing_mail')
