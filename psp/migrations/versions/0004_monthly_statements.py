"""Monthly statements: each one sent is kept as a frozen snapshot with its hash, which the
database itself refuses to change or delete.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26 09:57:39.606116
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

from ledger.models import UTCDateTime
from psp.schema_guards import allow_changes, refuse_changes


revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('statement',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('client_id', sa.Integer(), nullable=False),
    sa.Column('month', sqlmodel.sql.sqltypes.AutoString(length=7), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('opening_minutes', sa.Integer(), nullable=False),
    sa.Column('closing_minutes', sa.Integer(), nullable=False),
    sa.Column('content_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('text_body', sa.Text(), nullable=False),
    sa.Column('html_body', sa.Text(), nullable=False),
    sa.Column('csv_attachment', sa.Text(), nullable=False),
    sa.Column('pdf_attachment', sa.LargeBinary(), nullable=False),
    sa.Column('outgoing_mail_id', sa.Integer(), nullable=True),
    sa.Column('created_at', UTCDateTime(), nullable=False),
    sa.ForeignKeyConstraint(['client_id'], ['client.id'], name=op.f('fk_statement_client_id_client')),
    sa.ForeignKeyConstraint(['outgoing_mail_id'], ['outgoing_mail.id'], name=op.f('fk_statement_outgoing_mail_id_outgoing_mail')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_statement')),
    sa.UniqueConstraint('client_id', 'month', 'version', name='statement_version_once')
    )
    with op.batch_alter_table('statement', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_statement_client_id'), ['client_id'], unique=False)
    refuse_changes("statement", "statement_frozen", "a sent statement is frozen: send a new version with --resend")



def downgrade() -> None:
    allow_changes("statement", "statement_frozen")
    with op.batch_alter_table('statement', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_statement_client_id'))

    op.drop_table('statement')
