"""match-key covering index: the duplicate check reads key holders from one index alone

The duplicate check looks up the people holding each of a registration's match keys. The index
on the key alone sent each hit to the table for its person_id: at 1M cases (about 20M key rows,
far more than memory keeps) that is a random read of the table per holder, a few dozen per
person registered. (key, person_id) answers the lookup from the index (index-only on
PostgreSQL once the table is vacuumed; a covering index on SQLite) and replaces the key index.

Building it reads the whole table and blocks writes to it meanwhile: about a minute at 1M cases.

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22 14:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_person_match_key_key_person', 'person_match_key', ['key', 'person_id'], unique=False)
    op.drop_index('ix_person_match_key_key', table_name='person_match_key')


def downgrade():
    op.create_index('ix_person_match_key_key', 'person_match_key', ['key'], unique=False)
    op.drop_index('ix_person_match_key_key_person', table_name='person_match_key')
