"""Client sign-in by mail: a portal link has a purpose, `report` or a one-time `sign-in`.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-26 11:20:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op


revision: str = '0008'
down_revision: str | None = '0007'
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    # Every link issued so far opens a report; ADD COLUMN with a default keeps them so.
    op.add_column(
        'portal_link',
        sa.Column('purpose', sqlmodel.sql.sqltypes.AutoString(length=16), server_default='report', nullable=False),
    )


def downgrade() -> None:
    with op.batch_alter_table('portal_link', schema=None) as batch_op:
        batch_op.drop_column('purpose')
