"""dicom_source: Study/Series/SOP Instance UIDs and frame of PACS-imported images (for write-back)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02 20:50:00
"""
import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'dicom_source',
        sa.Column('image_id', sa.Integer(), sa.ForeignKey('image.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('project_id', sa.Integer(), sa.ForeignKey('project.id', ondelete='CASCADE'), nullable=False),
        sa.Column('study_uid', sa.String(64), nullable=False),
        sa.Column('series_uid', sa.String(64), nullable=False),
        sa.Column('sop_uid', sa.String(64), nullable=False),
        sa.Column('sop_class_uid', sa.String(64), nullable=False),
        sa.Column('frame_number', sa.Integer(), nullable=False),
        sa.Column('frames', sa.Integer(), nullable=False),
        sa.UniqueConstraint('project_id', 'sop_uid', 'frame_number', name='uq_dicom_source_instance_frame'),
    )
    op.create_index('ix_dicom_source_series', 'dicom_source', ['project_id', 'series_uid'])


def downgrade() -> None:
    op.drop_index('ix_dicom_source_series', table_name='dicom_source')
    op.drop_table('dicom_source')
