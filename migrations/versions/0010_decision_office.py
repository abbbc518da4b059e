"""decision office: each decision keeps a copy of its case's office, and the reports find an
office's decisions of a period in one index

* decision.office_id (NOT NULL, foreign key to office): filled from the decision's case. A case
  never changes office, so the copy never goes stale. The efficiency report (W7) and the
  outcome reports filtered the period's decisions by the case's office, which at 1M cases meant
  joining about a million cases: 1.0-2.0 s on PostgreSQL.
* ix_decision_office_issued (office_id, issued_at): on PostgreSQL partial (issued originals)
  and covering what throughput and workload read, so those are index-only scans; on SQLite
  partial on issued decisions.

At 1M cases (1.26M decisions) the backfill rewrites every decision row once: about a minute on
PostgreSQL. SQLite: the column is added, filled, then the table is rebuilt in batch mode to make
it NOT NULL with its foreign key. That is safe for decision: it has no expression-based index a
rebuild would drop (see 0007 for asylum_case, which has).

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-24 09:00:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '0010'
down_revision = '0009'
branch_labels = None
depends_on = None

FOREIGN_KEY = 'fk_decision_office_id_office'


def upgrade():
    op.add_column('decision', sa.Column('office_id', sa.Integer(), nullable=True))
    if op.get_bind().dialect.name == 'postgresql':
        op.execute(sa.text("UPDATE decision SET office_id = c.office_id FROM asylum_case c WHERE c.id = decision.case_id"))
        op.alter_column('decision', 'office_id', nullable=False)
        op.create_foreign_key(FOREIGN_KEY, 'decision', 'office', ['office_id'], ['id'])
    else:
        op.execute(sa.text("UPDATE decision SET office_id = "
                           "(SELECT c.office_id FROM asylum_case c WHERE c.id = decision.case_id)"))
        with op.batch_alter_table('decision', schema=None) as batch_op:
            batch_op.alter_column('office_id', existing_type=sa.Integer(), nullable=False)
            batch_op.create_foreign_key(FOREIGN_KEY, 'office', ['office_id'], ['id'])
    status, corrects = sa.column('status'), sa.column('corrects_decision_id')
    op.create_index('ix_decision_office_issued', 'decision', ['office_id', 'issued_at'], unique=False,
                    postgresql_include=['case_id', 'drafted_by_id', 'procedure_track', 'round'],
                    postgresql_where=sa.and_(status == 'issued', corrects.is_(None)),
                    sqlite_where=status == 'issued')


def downgrade():
    op.drop_index('ix_decision_office_issued', table_name='decision')
    if op.get_bind().dialect.name == 'postgresql':
        op.drop_constraint(FOREIGN_KEY, 'decision', type_='foreignkey')
        op.drop_column('decision', 'office_id')
    else:
        with op.batch_alter_table('decision', schema=None) as batch_op:
            batch_op.drop_constraint(FOREIGN_KEY, type_='foreignkey')
            batch_op.drop_column('office_id')
