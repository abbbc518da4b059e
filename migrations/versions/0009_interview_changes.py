"""interview changes: cancelled interviews keep their reason, who and when; omissions of the
personal interview

* interview: cancel_reason, cancel_details (S3, encrypted by app.crypto: a plain binary column
  here), cancelled_by_id, cancelled_at. Batch mode so SQLite can add the foreign key (it rebuilds
  the table): safe here, the interview table has no partial or expression index that a rebuild
  would drop (see 0007 and 0008 for asylum_case, which has).
* interviews recorded before this revision with the applicant absent become ``missed`` (the
  status a no-show gets from now on); the downgrade makes them ``recorded`` again.
* interview_omission: the personal interview omitted in an examination round, on a legal
  ground (APR Art 13; APD Art 14(2)); one per case and round.

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-23 09:00:00

"""
from alembic import op
import sqlalchemy as sa

import app.db_types


# revision identifiers, used by Alembic.
revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('interview', schema=None) as batch_op:
        batch_op.add_column(sa.Column('cancel_reason', sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column('cancelled_by_id', sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column('cancelled_at', app.db_types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column('cancel_details', sa.LargeBinary(), nullable=True))
        batch_op.create_foreign_key(batch_op.f('fk_interview_cancelled_by_id_user_account'), 'user_account',
                                    ['cancelled_by_id'], ['id'])

    op.execute(sa.text("UPDATE interview SET status = 'missed' WHERE status = 'recorded' "
                       "AND attendance IN ('absent_excused', 'absent_unexcused')"))

    op.create_table('interview_omission',
    sa.Column('id', sa.String(length=32), nullable=False),
    sa.Column('case_id', sa.String(length=32), nullable=False),
    sa.Column('round', sa.Integer(), nullable=False),
    sa.Column('ground', sa.String(length=32), nullable=False),
    sa.Column('medical_opinion_on', sa.Date(), nullable=True),
    sa.Column('recorded_by_id', sa.Integer(), nullable=False),
    sa.Column('created_at', app.db_types.UTCDateTime(timezone=True), nullable=False),
    sa.Column('medical_opinion_reference', sa.LargeBinary(), nullable=True),
    sa.Column('details', sa.LargeBinary(), nullable=True),
    sa.ForeignKeyConstraint(['case_id'], ['asylum_case.id'], name=op.f('fk_interview_omission_case_id_asylum_case'),
                            ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['recorded_by_id'], ['user_account.id'],
                            name=op.f('fk_interview_omission_recorded_by_id_user_account')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_interview_omission')),
    sa.UniqueConstraint('case_id', 'round', name=op.f('uq_interview_omission_case_id_round'))
    )


def downgrade():
    op.drop_table('interview_omission')
    op.execute(sa.text("UPDATE interview SET status = 'recorded' WHERE status = 'missed'"))
    with op.batch_alter_table('interview', schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f('fk_interview_cancelled_by_id_user_account'), type_='foreignkey')
        batch_op.drop_column('cancel_details')
        batch_op.drop_column('cancelled_at')
        batch_op.drop_column('cancelled_by_id')
        batch_op.drop_column('cancel_reason')
