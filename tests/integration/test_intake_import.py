"""Bulk import through the registration service: good lines kept, bad lines reported, nothing half-done."""

import json

from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db
from app.intake.models import Case, Person


def claim(family_name="Haddad", given_names="Rania", dob="1990-03-05", nationality="SYR", **overrides):
    line = {
        "made_on": "2026-06-10", "registered_on": "2026-06-12",
        "persons": [{"principal": True,
                     "identity": {"family_name": family_name, "given_names": given_names},
                     "birth": {"date_of_birth": dob, "sex": "F"},
                     "nationality": {"nationalities": [nationality]}}],
    }
    line.update(overrides)
    return json.dumps(line)


def run_import(app, tmp_path, lines, *args):
    path = tmp_path / "claims.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return app.test_cli_runner().invoke(args=["intake", "import", str(path), "--as", "officer", *args])


def case_count():
    return db.session.scalar(select(func.count()).select_from(Case))


def test_mixed_file_imports_good_lines_and_reports_bad_ones(app, make_user, tmp_path):
    """Valid lines become cases; each invalid line is reported with its number and reason."""
    make_user("registration_officer", username="officer")
    lines = [
        claim(),
        "{not json",
        claim(family_name="Okafor", given_names="Chidi", nationality="NGA", registered_on="2026-06-01"),
        claim(family_name="Tesfay", given_names="Abeba", nationality="ERI",
              persons=[{"principal": True, "identity": {"family_name": "Tesfay"}, "birth": {"sex": "Q"},
                        "nationality": {"nationalities": ["ERI"]}}]),
        claim(family_name="Nowak", given_names="Anna", nationality="UKR"),
    ]
    result = run_import(app, tmp_path, lines)
    assert result.exit_code == 2
    assert "line 2: not valid JSON" in result.output
    assert "line 3: registered_on: The claim cannot be registered before it was made" in result.output
    assert "line 4: persons.0.birth.sex: Choose one of the listed options." in result.output
    assert "5 lines read, 2 imported, 3 rejected" in result.output
    assert case_count() == 2
    # a rejected line leaves no person rows behind either
    assert db.session.scalar(select(func.count()).select_from(Person)) == 2


def test_dry_run_writes_nothing(app, make_user, tmp_path):
    """--dry-run validates every line and registers none."""
    make_user("registration_officer", username="officer")
    result = run_import(app, tmp_path, [claim(), claim(family_name="Nowak", nationality="UKR")], "--dry-run")
    assert result.exit_code == 0, result.output
    assert "2 lines read, 2 would import, 0 rejected" in result.output
    assert case_count() == 0


def test_duplicate_within_file_is_skipped_then_registered_with_new(app, make_user, tmp_path):
    """A transliteration variant of an already imported person is held back unless --on-duplicate new."""
    make_user("registration_officer", username="officer")
    lines = [claim(family_name="Al-Hassan", given_names="Mohammed"),
             claim(family_name="Al Hasan", given_names="Muhammad")]
    result = run_import(app, tmp_path, lines)
    assert "line 2: possible duplicate of a person in" in result.output
    assert case_count() == 1
    again = run_import(app, tmp_path, [lines[1]], "--on-duplicate", "new")
    assert again.exit_code == 0, again.output
    assert case_count() == 2
    confirmed = db.session.scalars(select(AuditEvent).where(
        AuditEvent.code == EventCode.DUPLICATE_CONFIRMED_NEW)).all()
    assert len(confirmed) == 1


def test_import_requires_a_registration_officer(app, make_user, tmp_path):
    """Only an account that may register claims can import them."""
    make_user("auditor", username="officer")
    result = run_import(app, tmp_path, [claim()])
    assert result.exit_code != 0
    assert "may not register claims" in result.output
    assert case_count() == 0


def test_legacy_id_is_kept_in_the_audit_event(app, make_user, tmp_path):
    """The legacy system's id is traceable in the (encrypted) registration event."""
    make_user("registration_officer", username="officer")
    line = json.loads(claim())
    line["legacy_id"] = "OLD-42"
    run_import(app, tmp_path, [json.dumps(line)])
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == EventCode.CASE_REGISTERED)).one()
    assert event.details["legacy_id"] == "OLD-42"
