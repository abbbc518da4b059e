"""queue indexes, lean: drop the redundant ix_asylum_case_queue, count from a narrow index, page
"my cases" by assignee and office, index-only list pages on PostgreSQL

* ix_asylum_case_queue (office, track, assignee, priority, deadline; all ascending, no
  tie-breakers) served no query since 0005 gave the queues partial indexes in their own order;
  it only cost every case insert and update a write, and it tempted SQLite's planner (see
  app.triage.queues._likely). Dropped.
* ix_asylum_case_open_count (office, track, status, assignee; partial over open unassigned
  cases): the per-track counts read it alone. At 1M cases (about 24,000 waiting per office) the
  count read a third of the pages of the wide queue index: 6.7 ms -> 3.3 ms on SQLite.
* ix_asylum_case_open_queue_track loses the status and assignee it carried for those counts.
* ix_asylum_case_open_assignee gains the office as its second key: "my cases" filters on both,
  so a later page seeks straight past its cursor instead of fetching every earlier row of the
  assignee to check its office.
* PostgreSQL: the list indexes (open_queue, open_queue_track, open_assignee) INCLUDE the other
  columns a list shows, so a page of 50 is an index-only scan: at 1M cases 5 buffers instead of
  55, no heap fetch. SQLite has no INCLUDE and ignores it.

Index operations only, never batch mode: on SQLite a batch "move and copy" rebuilds the table and
silently drops the expression-based partial indexes, which SQLite cannot reflect (see 0007).
SQLite creates and drops indexes in place.

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-22 17:30:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# Frozen copy of app.triage.queues.CLOSED_STATUSES as of this revision (a test compares them):
# changing that list needs a migration rebuilding these indexes.
CLOSED_STATUSES = ("decision_issued", "notified", "closed", "withdrawn", "implicitly_withdrawn", "transferred")

TABLE = "asylum_case"


def _columns():
    c = sa.table(TABLE, *(sa.column(name) for name in (
        "id", "office_id", "track", "assigned_to_id", "status", "priority", "statutory_deadline",
        "registered_on"))).c
    is_open = c.status.not_in(CLOSED_STATUSES)
    return (c, [c.statutory_deadline.is_(None), c.statutory_deadline, c.registered_on, c.id],
            sa.and_(c.assigned_to_id.is_(None), is_open), sa.and_(c.assigned_to_id.is_not(None), is_open))


LISTED = ["reference", "status", "version"]


def _create(name, columns, where, include=()):
    op.create_index(name, TABLE, columns, unique=False, postgresql_where=where, sqlite_where=where,
                    **({"postgresql_include": list(include)} if include else {}))


def upgrade():
    c, deadline_key, unassigned_open, assigned_open = _columns()
    op.drop_index('ix_asylum_case_queue', table_name=TABLE)
    op.drop_index('ix_asylum_case_open_queue', table_name=TABLE)
    _create('ix_asylum_case_open_queue', [c.office_id, c.priority.desc(), *deadline_key], unassigned_open,
            [*LISTED, "track"])
    op.drop_index('ix_asylum_case_open_queue_track', table_name=TABLE)
    _create('ix_asylum_case_open_queue_track', [c.office_id, c.track, c.priority.desc(), *deadline_key],
            unassigned_open, LISTED)
    _create('ix_asylum_case_open_count', [c.office_id, c.track, c.status, c.assigned_to_id], unassigned_open)
    op.drop_index('ix_asylum_case_open_assignee', table_name=TABLE)
    _create('ix_asylum_case_open_assignee', [c.assigned_to_id, c.office_id, *deadline_key], assigned_open,
            [*LISTED, "track", "priority"])


def downgrade():
    c, deadline_key, unassigned_open, assigned_open = _columns()
    op.drop_index('ix_asylum_case_open_assignee', table_name=TABLE)
    _create('ix_asylum_case_open_assignee', [c.assigned_to_id, *deadline_key], assigned_open)
    op.drop_index('ix_asylum_case_open_count', table_name=TABLE)
    op.drop_index('ix_asylum_case_open_queue_track', table_name=TABLE)
    _create('ix_asylum_case_open_queue_track', [c.office_id, c.track, c.priority.desc(), *deadline_key,
                                                c.status, c.assigned_to_id], unassigned_open)
    op.drop_index('ix_asylum_case_open_queue', table_name=TABLE)
    _create('ix_asylum_case_open_queue', [c.office_id, c.priority.desc(), *deadline_key], unassigned_open)
    op.create_index('ix_asylum_case_queue', TABLE,
                    ['office_id', 'track', 'assigned_to_id', 'priority', 'statutory_deadline'], unique=False)
