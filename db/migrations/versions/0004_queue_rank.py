"""queue rank on image: the labeling queue walks a partial index of cases still waiting for a label

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 08:30:00

`image.queue_rank` copies the acquisition rank of `project.queue_checkpoint_id` (db/queue_rank.py writes both);
`ix_image_queue` holds only train cases that are unlabeled or uncertain, so cases labeled since the last
analysis no longer sit at the front of the queue's walk (issue 14: next-case p95 on PostgreSQL). Existing
projects start with no published ranks (queue_checkpoint_id NULL): the queue reads the analysis rows as before
until the next analysis or rollback publishes them.
"""
import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None

WHERE = sa.text("split = 'train' AND label_status IN ('unlabeled', 'uncertain')")


def upgrade() -> None:
    with op.batch_alter_table('image') as batch:
        batch.add_column(sa.Column('queue_rank', sa.Integer(), nullable=True))
    with op.batch_alter_table('project') as batch:
        batch.add_column(sa.Column('queue_checkpoint_id', sa.Integer(), nullable=True))
    op.create_index('ix_image_queue', 'image', ['project_id', 'queue_rank', 'id'], sqlite_where=WHERE,
                    postgresql_where=WHERE)


def downgrade() -> None:
    op.drop_index('ix_image_queue', table_name='image')
    with op.batch_alter_table('project') as batch:
        batch.drop_column('queue_checkpoint_id')
    with op.batch_alter_table('image') as batch:
        batch.drop_column('queue_rank')
