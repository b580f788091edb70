"""Mail intake: stored messages, where each was seen, mailbox state, quarantine.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26 07:42:42.346621
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from ledger.models import UTCDateTime


revision: str = '0002'
down_revision: str | None = '0001'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('mailbox_state',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('account', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('folder', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('last_uid', sa.BigInteger(), nullable=False),
    sa.Column('stored', sa.Integer(), nullable=False),
    sa.Column('duplicates', sa.Integer(), nullable=False),
    sa.Column('quarantined', sa.Integer(), nullable=False),
    sa.Column('last_success_at', UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_error_at', UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mailbox_state')),
    sa.UniqueConstraint('account', 'folder', name='mailbox_state_folder_unique')
    )
    op.create_table('mail_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source_item_id', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=998), nullable=False),
    sa.Column('in_reply_to', sa.Text(), nullable=False),
    sa.Column('references', sa.Text(), nullable=False),
    sa.Column('sender', sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True),
    sa.Column('recipients', sa.Text(), nullable=False),
    sa.Column('direction', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('attribution', sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
    sa.Column('noise', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('subject_key', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.ForeignKeyConstraint(['source_item_id'], ['source_item.id'], name=op.f('fk_mail_message_source_item_id_source_item')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_message')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_mail_message_content_hash')),
    sa.UniqueConstraint('source_item_id', name=op.f('uq_mail_message_source_item_id'))
    )
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_message_message_id'), ['message_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_message_sender'), ['sender'], unique=False)
        batch_op.create_index(batch_op.f('ix_mail_message_subject_key'), ['subject_key'], unique=False)

    op.create_table('quarantined_message',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('folder', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('raw', sa.LargeBinary(), nullable=False),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('resolved_item_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['resolved_item_id'], ['source_item.id'], name=op.f('fk_quarantined_message_resolved_item_id_source_item')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_quarantined_message')),
    sa.UniqueConstraint('content_hash', name=op.f('uq_quarantined_message_content_hash'))
    )
    op.create_table('mail_location',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('mail_message_id', sa.Integer(), nullable=False),
    sa.Column('source', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('folder', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('uidvalidity', sa.BigInteger(), nullable=False),
    sa.Column('uid', sqlmodel.sql.sqltypes.AutoString(length=500), nullable=False),
    sa.Column('seen_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['mail_message_id'], ['mail_message.id'], name=op.f('fk_mail_location_mail_message_id_mail_message')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_mail_location')),
    sa.UniqueConstraint('source', 'folder', 'uidvalidity', 'uid', name='mail_location_unique')
    )
    with op.batch_alter_table('mail_location', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_mail_location_mail_message_id'), ['mail_message_id'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('mail_location', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_location_mail_message_id'))

    op.drop_table('mail_location')
    op.drop_table('quarantined_message')
    with op.batch_alter_table('mail_message', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_mail_message_subject_key'))
        batch_op.drop_index(batch_op.f('ix_mail_message_sender'))
        batch_op.drop_index(batch_op.f('ix_mail_message_message_id'))

    op.drop_table('mail_message')
    op.drop_table('mailbox_state')
