"""queue indexes: partial indexes over open cases in exactly the queues' order

The queue order (priority DESC, statutory deadline ASC with cases without one last, registered
on, id) cannot be read from ix_asylum_case_queue (all ascending, no tie-breakers): at 1M cases
the database sorted every unassigned case of the track for each page (about 100 ms on
PostgreSQL instead of under 1 ms). SQLite cannot declare NULLS LAST in an index, so the
deadline's "is null" is a key part of its own, on both databases alike. Partial: open cases
only, so decided cases never enter (or slow) the queues. See app/triage/queues.py.

Revision ID: 0005
Revises: 0003
Create Date: 2026-11-22 15:40:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0005'
down_revision = '0003'
branch_labels = None
depends_on = None

# Frozen copy of app.triage.queues.CLOSED_STATUSES as of this revision (a test compares them):
# changing that list needs a migration rebuilding these indexes.
CLOSED_STATUSES = ("decision_issued", "notified", "closed", "withdrawn", "implicitly_withdrawn", "transferred")

TABLE = "asylum_case"


def _indexes():
    c = sa.table(TABLE, *(sa.column(name) for name in (
        "id", "office_id", "track", "assigned_to_id", "status", "priority", "statutory_deadline",
        "registered_on"))).c
    is_open = c.status.not_in(CLOSED_STATUSES)
    deadline_key = [c.statutory_deadline.is_(None), c.statutory_deadline, c.registered_on, c.id]
    unassigned_open = sa.and_(c.assigned_to_id.is_(None), is_open)
    assigned_open = sa.and_(c.assigned_to_id.is_not(None), is_open)
    deadline_open = sa.and_(c.statutory_deadline.is_not(None), is_open)
    return [
        ("ix_asylum_case_open_queue", [c.office_id, c.priority.desc(), *deadline_key], unassigned_open),
        # status and assigned_to_id last: the per-track counts read this index alone (SQLite too).
        ("ix_asylum_case_open_queue_track", [c.office_id, c.track, c.priority.desc(), *deadline_key,
                                             c.status, c.assigned_to_id], unassigned_open),
        ("ix_asylum_case_open_assignee", [c.assigned_to_id, *deadline_key], assigned_open),
        ("ix_asylum_case_open_deadline", [c.office_id, c.statutory_deadline, c.registered_on, c.id],
         deadline_open),
    ]


def upgrade():
    for name, columns, where in _indexes():
        op.create_index(name, TABLE, columns, unique=False, postgresql_where=where, sqlite_where=where)


def downgrade():
    for name, _columns, _where in reversed(_indexes()):
        op.drop_index(name, table_name=TABLE)
