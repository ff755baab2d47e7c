"""galleries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = '0004'
down_revision: str | None = '0003'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # First: the galleries' composite foreign keys reference it. Batch mode for SQLite.
    with op.batch_alter_table('assets') as batch:
        batch.create_unique_constraint('uq_assets_id_site_id', ['id', 'site_id'])
    op.create_table('galleries',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('description', sa.Text(), nullable=False),
    sa.Column('cover_asset_id', sa.Uuid(), nullable=True),
    sa.Column('created_by', sa.Uuid(), nullable=True),
    sa.Column('item_count', sa.Integer(), nullable=False),
    sa.Column('deleted_at', app.db.UTCDateTime(timezone=True), nullable=True),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.CheckConstraint('item_count >= 0', name=op.f('ck_galleries_item_count')),
    sa.ForeignKeyConstraint(['cover_asset_id', 'site_id'], ['assets.id', 'assets.site_id'], name='fk_galleries_cover_site'),
    sa.ForeignKeyConstraint(['created_by'], ['users.id'], name=op.f('fk_galleries_created_by_users'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_galleries_org_id_organizations'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['site_id', 'org_id'], ['sites.id', 'sites.org_id'], name='fk_galleries_site_org', ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_galleries')),
    sa.UniqueConstraint('id', 'site_id', name='uq_galleries_id_site_id')
    )
    op.create_index('ix_galleries_site_created', 'galleries', ['site_id', 'created_at', 'id'], unique=False)
    op.create_index('ix_galleries_site_title', 'galleries', ['site_id', 'title', 'id'], unique=False)
    op.create_index('ix_galleries_site_updated', 'galleries', ['site_id', 'updated_at', 'id'], unique=False)
    op.create_table('gallery_items',
    sa.Column('org_id', sa.Uuid(), nullable=False),
    sa.Column('site_id', sa.Uuid(), nullable=False),
    sa.Column('gallery_id', sa.Uuid(), nullable=False),
    sa.Column('asset_id', sa.Uuid(), nullable=False),
    sa.Column('caption', sa.String(length=1000), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('created_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.Column('updated_at', app.db.UTCDateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['asset_id', 'site_id'], ['assets.id', 'assets.site_id'], name='fk_gallery_items_asset_site'),
    sa.ForeignKeyConstraint(['gallery_id', 'site_id'], ['galleries.id', 'galleries.site_id'], name='fk_gallery_items_gallery_site', ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['org_id'], ['organizations.id'], name=op.f('fk_gallery_items_org_id_organizations'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_gallery_items')),
    sa.UniqueConstraint('gallery_id', 'asset_id', name='uq_gallery_items_gallery_id_asset_id')
    )
    op.create_index('ix_gallery_items_gallery_position', 'gallery_items', ['gallery_id', 'position', 'id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_gallery_items_gallery_position', table_name='gallery_items')
    op.drop_table('gallery_items')
    op.drop_index('ix_galleries_site_updated', table_name='galleries')
    op.drop_index('ix_galleries_site_title', table_name='galleries')
    op.drop_index('ix_galleries_site_created', table_name='galleries')
    op.drop_table('galleries')
    with op.batch_alter_table('assets') as batch:
        batch.drop_constraint('uq_assets_id_site_id', type_='unique')
