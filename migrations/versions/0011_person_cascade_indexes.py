"""person cascade indexes: interview and decision get an index leading with person_id

Deleting a person (a dependant removed at intake) cascades to interview and decision through
their person_id foreign keys. Neither had an index leading with person_id, so each deleted
person made PostgreSQL scan both tables in full: at 1M cases, deleting about 700 people took
six minutes.

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-24 12:00:00

"""
from alembic import op


# revision identifiers, used by Alembic.
revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None


def upgrade():
    op.create_index('ix_interview_person', 'interview', ['person_id'], unique=False)
    op.create_index('ix_decision_person', 'decision', ['person_id'], unique=False)


def downgrade():
    op.drop_index('ix_decision_person', table_name='decision')
    op.drop_index('ix_interview_person', table_name='interview')
