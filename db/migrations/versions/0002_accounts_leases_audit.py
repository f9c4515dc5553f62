"""accounts, login sessions, case leases, audit log

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-02 16:40:00

User accounts live in the existing `annotator` table (every label already points at it); `case_lease` holds
reader slots; `audit_event` is append-only, enforced by triggers on both SQLite and PostgreSQL.
"""
import sqlalchemy as sa
from alembic import op

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None

SQLITE_TRIGGERS = (
    ("CREATE TRIGGER audit_event_no_update BEFORE UPDATE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"),
    ("CREATE TRIGGER audit_event_no_delete BEFORE DELETE ON audit_event "
    "BEGIN SELECT RAISE(ABORT, 'audit_event is append-only'); END"),
)
PG_TRIGGERS = (
    ("CREATE OR REPLACE FUNCTION medssl_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS "
    "$$ BEGIN RAISE EXCEPTION 'audit_event is append-only'; END $$"),
    ("CREATE TRIGGER audit_event_no_change BEFORE UPDATE OR DELETE ON audit_event "
    "FOR EACH ROW EXECUTE FUNCTION medssl_audit_append_only()"),
    ("CREATE TRIGGER audit_event_no_truncate BEFORE TRUNCATE ON audit_event "
    "FOR EACH STATEMENT EXECUTE FUNCTION medssl_audit_append_only()"),
)


def upgrade() -> None:
    with op.batch_alter_table('annotator') as batch:
        batch.add_column(sa.Column('password_hash', sa.Text(), nullable=True))
        batch.add_column(sa.Column('disabled', sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column('failed_logins', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('locked_until', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('last_login_at', sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column('password_changed_at', sa.DateTime(timezone=True), nullable=True))
    op.create_table('case_lease',
    sa.Column('image_id', sa.Integer(), nullable=False),
    sa.Column('slot', sa.Integer(), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('leased_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['image_id'], ['image.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['project_id'], ['project.id'], ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['annotator.id'], ),
    sa.PrimaryKeyConstraint('image_id', 'slot'),
    sa.UniqueConstraint('image_id', 'user_id', name='uq_case_lease_image_user')
    )
    op.create_index('ix_case_lease_project_id', 'case_lease', ['project_id'], unique=False)
    op.create_index('ix_case_lease_user_expires', 'case_lease', ['user_id', 'expires_at'], unique=False)
    op.create_table('audit_event',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('user_name', sa.String(length=200), nullable=True),
    sa.Column('action', sa.String(length=40), nullable=False),
    sa.Column('project_id', sa.Integer(), nullable=True),
    sa.Column('target_kind', sa.String(length=20), nullable=True),
    sa.Column('target_id', sa.String(length=64), nullable=True),
    sa.Column('before', sa.JSON(), nullable=True),
    sa.Column('after', sa.JSON(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index('ix_audit_event_at', 'audit_event', ['at'], unique=False)
    op.create_index('ix_audit_event_action', 'audit_event', ['action'], unique=False)
    op.create_index('ix_audit_project_id', 'audit_event', ['project_id', 'id'], unique=False)
    op.create_table('login_session',
    sa.Column('token_hash', sa.String(length=64), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_seen_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['annotator.id'], ),
    sa.PrimaryKeyConstraint('token_hash')
    )
    op.create_index('ix_login_session_user_id', 'login_session', ['user_id'], unique=False)
    dialect = op.get_bind().dialect.name
    for statement in SQLITE_TRIGGERS if dialect == 'sqlite' else PG_TRIGGERS if dialect == 'postgresql' else ():
        op.execute(statement)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == 'postgresql':
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_change ON audit_event")
        op.execute("DROP TRIGGER IF EXISTS audit_event_no_truncate ON audit_event")
        op.execute("DROP FUNCTION IF EXISTS medssl_audit_append_only()")
    op.drop_index('ix_login_session_user_id', table_name='login_session')
    op.drop_table('login_session')
    op.drop_index('ix_audit_project_id', table_name='audit_event')
    op.drop_index('ix_audit_event_action', table_name='audit_event')
    op.drop_index('ix_audit_event_at', table_name='audit_event')
    op.drop_table('audit_event')
    op.drop_index('ix_case_lease_user_expires', table_name='case_lease')
    op.drop_index('ix_case_lease_project_id', table_name='case_lease')
    op.drop_table('case_lease')
    with op.batch_alter_table('annotator') as batch:
        for column in ('password_changed_at', 'last_login_at', 'locked_until', 'failed_logins', 'disabled',
                       'password_hash'):
            batch.drop_column(column)
