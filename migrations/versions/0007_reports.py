"""reports: subsequent-application flag (Eurostat returns) and the indexes the reports need

``asylum_case.is_subsequent_application`` is set at registration from the principal applicant's
previous applications; rows registered before this revision get false (server default), which
is what the returns assumed until now.

Indexes (EXPLAIN at 1M cases showed full scans of decision and asylum_case without them):
ix_decision_status_issued for the period's decisions, ix_asylum_case_office_registered for an
office's registrations in a period, and ix_asylum_case_pending_report, partial over pending cases
and covering what the backlog, ageing and deadline reports read. See app/reports/queries.py.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22 17:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


# Plain ALTER TABLE, never batch mode: on SQLite a batch "move and copy" rebuilds the table and
# silently drops the expression-based partial indexes of revision 0005, which SQLite cannot
# reflect. SQLite adds and (3.35+) drops a column in place.

# Frozen copy of app.reports.queries.NOT_PENDING_STATUSES as of this revision: changing that list
# needs a migration rebuilding ix_asylum_case_pending_report.
NOT_PENDING_STATUSES = ("appeal_decided", "appeal_lodged", "closed", "decision_issued", "implicitly_withdrawn",
                        "notified", "transferred", "withdrawn")


def upgrade():
    op.add_column('asylum_case', sa.Column('is_subsequent_application', sa.Boolean(), nullable=False,
                                           server_default=sa.false()))
    op.create_index('ix_decision_status_issued', 'decision', ['status', 'issued_at'], unique=False)
    op.create_index('ix_asylum_case_office_registered', 'asylum_case', ['office_id', 'registered_on'], unique=False)
    pending = sa.column('status').not_in(NOT_PENDING_STATUSES)
    op.create_index('ix_asylum_case_pending_report', 'asylum_case',
                    ['office_id', 'track', 'status', 'registered_on', 'statutory_deadline'], unique=False,
                    postgresql_where=pending, sqlite_where=pending)


def downgrade():
    op.drop_index('ix_asylum_case_pending_report', table_name='asylum_case')
    op.drop_index('ix_asylum_case_office_registered', table_name='asylum_case')
    op.drop_index('ix_decision_status_issued', table_name='decision')
    op.drop_column('asylum_case', 'is_subsequent_application')
