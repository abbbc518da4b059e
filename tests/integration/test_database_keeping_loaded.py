"""``database.keeping_loaded``: the one place a commit skips expiring the session's objects
(``commit_after_read`` and the decisions service that keeps the rows it wrote both use it)."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from app.auth.models import Office
from app.database import commit_after_read, keeping_loaded
from app.extensions import db


@pytest.fixture
def two_offices(app, office, other_office) -> tuple[Office, Office]:
    for row in (office, other_office):
        row.name  # noqa: B018 - loaded: the commit in the fixtures expired it
    return office, other_office


def _expired(row) -> set[str]:
    return set(inspect(row).expired_attributes)


def test_commit_after_read_keeps_everything_loaded(two_offices):
    office, other = two_offices
    commit_after_read()
    assert not _expired(office) and not _expired(other)
    assert db.session().expire_on_commit is True


def test_with_kept_only_those_rows_stay_loaded(two_offices):
    office, other = two_offices
    with keeping_loaded(kept=[office]) as session:
        session.commit()
    assert not _expired(office)
    assert "name" in _expired(other)
    assert db.session().expire_on_commit is True


def test_a_failing_block_restores_expire_on_commit_and_expires_nothing_more(two_offices):
    office, other = two_offices
    with pytest.raises(RuntimeError), keeping_loaded(kept=[office]):
        raise RuntimeError("conflict")
    assert not _expired(other)
    assert db.session().expire_on_commit is True
