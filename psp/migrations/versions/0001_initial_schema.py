"""Initial schema, and the triggers that make ledger entries append-only.

Revision ID: 0001
Revises:
Create Date: 2026-11-26 07:07:24.408210
"""

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

import ledger.models
from psp.schema_guards import allow_changes, refuse_changes


revision: str = "0001"
down_revision: str | None = None
branch_labels: Sequence[str] | None = None
depends_on: Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "audit_event",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", ledger.models.UTCDateTime(), nullable=False),
        sa.Column(
            "actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False
        ),
        sa.Column(
            "action", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False
        ),
        sa.Column(
            "target", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False
        ),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_event")),
    )
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_audit_event_target"), ["target"], unique=False
        )

    op.create_table(
        "client",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sqlmodel.sql.sqltypes.AutoString(length=80), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column("plan", sqlmodel.sql.sqltypes.AutoString(length=8), nullable=False),
        sa.Column("hourly_rate_cents", sa.Integer(), nullable=False),
        sa.Column("created_at", ledger.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "plan IN ('psp', 'none')", name=op.f("ck_client_plan_allowed")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client")),
        sa.UniqueConstraint("slug", name=op.f("uq_client_slug")),
    )
    op.create_table(
        "block",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("ref", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("purchased_on", sa.Date(), nullable=False),
        sa.Column("created_at", ledger.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint("minutes > 0", name=op.f("ck_block_block_minutes_positive")),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_block_client_id_client")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_block")),
    )
    with op.batch_alter_table("block", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_block_client_id"), ["client_id"], unique=False
        )

    op.create_table(
        "client_domain",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column(
            "domain", sqlmodel.sql.sqltypes.AutoString(length=253), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_client_domain_client_id_client")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_domain")),
        sa.UniqueConstraint("domain", name=op.f("uq_client_domain_domain")),
    )
    with op.batch_alter_table("client_domain", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_domain_client_id"), ["client_id"], unique=False
        )

    op.create_table(
        "client_email",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column(
            "address", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False
        ),
        sa.Column("billing", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_client_email_client_id_client")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_client_email")),
        sa.UniqueConstraint("address", name=op.f("uq_client_email_address")),
    )
    with op.batch_alter_table("client_email", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_client_email_client_id"), ["client_id"], unique=False
        )

    op.create_table(
        "project",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("name", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column("created_at", ledger.models.UTCDateTime(), nullable=False),
        sa.Column("decided_on", sa.Date(), nullable=True),
        sa.Column(
            "decided_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True
        ),
        sa.CheckConstraint(
            "status IN ('proposed', 'accepted', 'declined')",
            name=op.f("ck_project_status_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_project_client_id_client")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_project")),
        sa.UniqueConstraint("client_id", "name", name="project_client_name_unique"),
    )
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_project_client_id"), ["client_id"], unique=False
        )

    op.create_table(
        "source_item",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column(
            "channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column(
            "subject", sqlmodel.sql.sqltypes.AutoString(length=998), nullable=False
        ),
        sa.Column("excerpt", sa.Text(), nullable=False),
        sa.Column(
            "sender", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True
        ),
        sa.Column("occurred_at", ledger.models.UTCDateTime(), nullable=False),
        sa.Column(
            "thread_key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False
        ),
        sa.Column(
            "source_key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=False
        ),
        sa.Column("created_at", ledger.models.UTCDateTime(), nullable=False),
        sa.CheckConstraint(
            "channel IN ('email', 'ticket', 'phone', 'skype', 'onsite')",
            name=op.f("ck_source_item_channel_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_source_item_client_id_client")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_source_item")),
        sa.UniqueConstraint("source_key", name=op.f("uq_source_item_source_key")),
    )
    with op.batch_alter_table("source_item", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_source_item_client_id"), ["client_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_source_item_thread_key"), ["thread_key"], unique=False
        )

    op.create_table(
        "proposal",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("source_item_id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=True),
        sa.Column(
            "status", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column(
            "category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False
        ),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column(
            "proposed_category",
            sqlmodel.sql.sqltypes.AutoString(length=16),
            nullable=False,
        ),
        sa.Column("proposed_minutes", sa.Integer(), nullable=False),
        sa.Column("contact_minutes", sa.Integer(), nullable=False),
        sa.Column("rule", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
        sa.Column("explanation", sa.Text(), nullable=False),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("created_at", ledger.models.UTCDateTime(), nullable=False),
        sa.Column("decided_at", ledger.models.UTCDateTime(), nullable=True),
        sa.Column(
            "decided_by", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=True
        ),
        sa.Column("decision_note", sa.Text(), nullable=True),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "category IN ('billable', 'module-bug', 'pre-sales', 'project-prep', 'ignored')",
            name=op.f("ck_proposal_category_allowed"),
        ),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected')",
            name=op.f("ck_proposal_status_allowed"),
        ),
        sa.CheckConstraint(
            "minutes >= 0", name=op.f("ck_proposal_proposal_minutes_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_proposal_client_id_client")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["project.id"], name=op.f("fk_proposal_project_id_project")
        ),
        sa.ForeignKeyConstraint(
            ["source_item_id"],
            ["source_item.id"],
            name=op.f("fk_proposal_source_item_id_source_item"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_proposal")),
        sa.UniqueConstraint("source_item_id", name=op.f("uq_proposal_source_item_id")),
    )
    with op.batch_alter_table("proposal", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_proposal_project_id"), ["project_id"], unique=False
        )
        batch_op.create_index(
            "ix_proposal_status_client", ["status", "client_id"], unique=False
        )

    op.create_table(
        "ledger_entry",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("client_id", sa.Integer(), nullable=False),
        sa.Column("effective_on", sa.Date(), nullable=False),
        sa.Column("posted_at", ledger.models.UTCDateTime(), nullable=False),
        sa.Column("kind", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=False),
        sa.Column(
            "category", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True
        ),
        sa.Column("minutes", sa.Integer(), nullable=False),
        sa.Column("logged_minutes", sa.Integer(), nullable=False),
        sa.Column(
            "channel", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True
        ),
        sa.Column(
            "subject", sqlmodel.sql.sqltypes.AutoString(length=998), nullable=False
        ),
        sa.Column(
            "request_key", sqlmodel.sql.sqltypes.AutoString(length=300), nullable=True
        ),
        sa.Column("proposal_id", sa.Integer(), nullable=True),
        sa.Column("project_id", sa.Integer(), nullable=True),
        sa.Column("block_id", sa.Integer(), nullable=True),
        sa.Column("source_item_id", sa.Integer(), nullable=True),
        sa.Column("reverses_id", sa.Integer(), nullable=True),
        sa.Column(
            "idempotency_key",
            sqlmodel.sql.sqltypes.AutoString(length=100),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column(
            "actor", sqlmodel.sql.sqltypes.AutoString(length=320), nullable=False
        ),
        sa.CheckConstraint(
            "category IS NULL OR category IN ('billable', 'module-bug', 'pre-sales', 'project-prep', 'ignored')",
            name=op.f("ck_ledger_entry_category_allowed"),
        ),
        sa.CheckConstraint(
            "kind IN ('block', 'charge', 'reversal')",
            name=op.f("ck_ledger_entry_kind_allowed"),
        ),
        sa.ForeignKeyConstraint(
            ["block_id"], ["block.id"], name=op.f("fk_ledger_entry_block_id_block")
        ),
        sa.ForeignKeyConstraint(
            ["client_id"], ["client.id"], name=op.f("fk_ledger_entry_client_id_client")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["project.id"],
            name=op.f("fk_ledger_entry_project_id_project"),
        ),
        sa.ForeignKeyConstraint(
            ["proposal_id"],
            ["proposal.id"],
            name=op.f("fk_ledger_entry_proposal_id_proposal"),
        ),
        sa.ForeignKeyConstraint(
            ["reverses_id"],
            ["ledger_entry.id"],
            name=op.f("fk_ledger_entry_reverses_id_ledger_entry"),
        ),
        sa.ForeignKeyConstraint(
            ["source_item_id"],
            ["source_item.id"],
            name=op.f("fk_ledger_entry_source_item_id_source_item"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_entry")),
        sa.UniqueConstraint(
            "idempotency_key", name=op.f("uq_ledger_entry_idempotency_key")
        ),
        sa.UniqueConstraint("reverses_id", name=op.f("uq_ledger_entry_reverses_id")),
    )
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.create_index(
            "ix_ledger_entry_client_day",
            ["client_id", "effective_on", "id"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_ledger_entry_proposal_id"), ["proposal_id"], unique=False
        )
        batch_op.create_index(
            "ix_ledger_entry_request", ["client_id", "request_key"], unique=False
        )
    refuse_changes("ledger_entry", "ledger_entry_append_only", "ledger entries are append-only: post a reversal instead")


def downgrade() -> None:
    allow_changes("ledger_entry", "ledger_entry_append_only")
    with op.batch_alter_table("ledger_entry", schema=None) as batch_op:
        batch_op.drop_index("ix_ledger_entry_request")
        batch_op.drop_index(batch_op.f("ix_ledger_entry_proposal_id"))
        batch_op.drop_index("ix_ledger_entry_client_day")

    op.drop_table("ledger_entry")
    with op.batch_alter_table("proposal", schema=None) as batch_op:
        batch_op.drop_index("ix_proposal_status_client")
        batch_op.drop_index(batch_op.f("ix_proposal_project_id"))

    op.drop_table("proposal")
    with op.batch_alter_table("source_item", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_source_item_thread_key"))
        batch_op.drop_index(batch_op.f("ix_source_item_client_id"))

    op.drop_table("source_item")
    with op.batch_alter_table("project", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_project_client_id"))

    op.drop_table("project")
    with op.batch_alter_table("client_email", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_email_client_id"))

    op.drop_table("client_email")
    with op.batch_alter_table("client_domain", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_client_domain_client_id"))

    op.drop_table("client_domain")
    with op.batch_alter_table("block", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_block_client_id"))

    op.drop_table("block")
    op.drop_table("client")
    with op.batch_alter_table("audit_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_audit_event_target"))

    op.drop_table("audit_event")
