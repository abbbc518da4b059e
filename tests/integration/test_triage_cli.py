"""`flask triage ...`: evaluate (the issue's contract, with or without a database), replay,
activate, retriage and the reference-data imports."""

from __future__ import annotations

import copy
import json
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import func, select

from app.audit.codes import EventCode
from app.audit.models import AuditEvent
from app.extensions import db
from app.intake import services as intake
from app.intake.models import Case
from app.triage import rules
from app.triage.models import RecognitionRate, RulesetVersion

EXAMPLES_PATH = Path(__file__).resolve().parents[1] / "fixtures" / "triage-examples.json"
EXAMPLES = json.loads(EXAMPLES_PATH.read_text(encoding="utf-8"))


def run(app, *args):
    return app.test_cli_runner().invoke(args=["triage", *args])


def write_json(tmp_path, items, name="items.json") -> str:
    path = tmp_path / name
    path.write_text(json.dumps(items), encoding="utf-8")
    return str(path)


def modified_ruleset(tmp_path, threshold=30, version="2026.1.1-cli") -> str:
    document = yaml.safe_load((rules.RULESETS_DIR / "eu-apr-2026.yaml").read_text(encoding="utf-8"))
    document = copy.deepcopy(document)
    document["version"] = version
    next(r for r in document["rules"] if r["id"] == "apr-42-1-j")["when"]["all"][0]["value"] = threshold
    path = tmp_path / "candidate.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False), encoding="utf-8")
    return str(path)


def test_every_worked_example_gives_its_expected_track(app):
    """flask triage evaluate on triage-examples.json: each item's track is its expected_track, in
    the contract's shape {id, track, grounds, rules, ruleset, deadline}."""
    result = run(app, "evaluate", str(EXAMPLES_PATH))
    assert result.exit_code == 0, result.output
    output = json.loads(result.stdout)
    assert [(o["id"], o["track"]) for o in output] == [(e["id"], e["expected_track"]) for e in EXAMPLES]
    assert all(set(o) == {"id", "track", "grounds", "rules", "ruleset", "deadline"} for o in output)
    assert {o["ruleset"] for o in output} == {"eu-apr-2026@2026.1.0"}
    first = output[0]
    assert first["grounds"][0] == {"code": "not_lodged_within_21_days", "reason_code": "NOT_LODGED_WITHIN_21_DAYS",
                                   "legal_basis": "APR 28(1), 41(1)(a)"}
    assert first["deadline"] is None and "apr-28-not-lodged" in first["rules"]
    assert next(o for o in output if o["id"] == "TC19")["deadline"] == "2026-10-03"


def test_evaluate_works_without_a_migrated_database(app, app_factory, tmp_path):
    """On an empty database file (never migrated) the configured shipped ruleset is used."""
    # (``app`` first: the fixture's clean-up after a PostgreSQL run works on the first app built.)
    application = app_factory(SQLALCHEMY_DATABASE_URI=f"sqlite:///{tmp_path / 'empty.db'}")
    with application.app_context():
        result = run(application, "evaluate", str(EXAMPLES_PATH))
    assert result.exit_code == 0, result.output
    assert [o["track"] for o in json.loads(result.stdout)] == [e["expected_track"] for e in EXAMPLES]


@pytest.mark.parametrize(("facts", "field"), [
    ({"eurodac_hit": {"member_state": "ITA", "category": "tourist", "hit_date": "2026-07-02"}}, "eurodac_hit.category"),
    ({"date_of_birth": "10/03/1994"}, "date_of_birth"),
    ({"favourite_colour": "blue"}, "favourite_colour"),
    ({"vulnerabilities": ["minor", "sad"]}, "vulnerabilities[1]"),
    ({"recognition_rate_for_nationality": 120}, "recognition_rate_for_nationality"),
])
def test_malformed_facts_name_the_item_and_the_field(app, tmp_path, facts, field):
    """A bad fact: exit status 2, and the message names the item id and the field; nothing on stdout."""
    items = copy.deepcopy(EXAMPLES[:3])
    items[1]["facts"].update(facts)
    result = run(app, "evaluate", write_json(tmp_path, items))
    assert result.exit_code == 2
    assert "'TC02'" in result.stderr and f"[field: {field}]" in result.stderr
    assert result.stdout == ""


def test_bad_context_and_bad_files_are_clear_errors(app, tmp_path):
    """An unknown context setting names it; a file that is not a JSON array says so."""
    items = copy.deepcopy(EXAMPLES[:1])
    items[0]["context"]["border_closed"] = True
    result = run(app, "evaluate", write_json(tmp_path, items))
    assert result.exit_code == 2 and "context.border_closed" in result.stderr and "'TC01'" in result.stderr
    not_json = tmp_path / "broken.json"
    not_json.write_text("[{", encoding="utf-8")
    result = run(app, "evaluate", str(not_json))
    assert result.exit_code == 1 and "not valid JSON" in result.output
    result = run(app, "evaluate", write_json(tmp_path, {"id": "x"}))
    assert result.exit_code == 1 and "expected a JSON array" in result.output


def test_evaluate_with_another_ruleset(app, tmp_path):
    """--ruleset FILE: with the low-rate ground at 30%, TC13 (20.1% at the border) goes to the
    border procedure; the output names the candidate ruleset. A broken file is refused clearly."""
    result = run(app, "evaluate", str(EXAMPLES_PATH), "--ruleset", modified_ruleset(tmp_path))
    assert result.exit_code == 0, result.output
    output = {o["id"]: o for o in json.loads(result.stdout)}
    assert output["TC13"]["track"] == "border" and output["TC13"]["ruleset"] == "eu-apr-2026@2026.1.1-cli"
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\nversion: '1'\n", encoding="utf-8")
    result = run(app, "evaluate", str(EXAMPLES_PATH), "--ruleset", str(broken))
    assert result.exit_code == 1 and "ruleset refused" in result.output


def test_import_rates_rejects_a_file_with_a_bad_line(app, tmp_path, make_user):
    """import-rates: bad lines listed with their numbers, exit 2, nothing imported; then a good file."""
    make_user("supervisor", username="sup")
    path = tmp_path / "rates.csv"
    path.write_text("nationality,rate_pct,source,as_of\nPAK,15,Eurostat,2026-03-01\nAFG,-3,Eurostat,2026-03-01\n")
    result = run(app, "import-rates", str(path), "--as", "sup")
    assert result.exit_code == 2
    assert "line 3: rate_pct:" in result.stderr and "nothing imported" in result.stderr
    assert db.session.scalar(select(func.count()).select_from(RecognitionRate)) == 0
    path.write_text("nationality,rate_pct,source,as_of\nPAK,15,Eurostat,2026-03-01\n")
    result = run(app, "import-rates", str(path), "--as", "sup")
    assert result.exit_code == 0 and "1 created" in result.output
    event = db.session.scalars(select(AuditEvent).where(AuditEvent.code == int(EventCode.REFERENCE_DATA_CHANGED))).one()
    assert event.actor_role == "supervisor"
    result = run(app, "import-rates", str(path), "--as", "nobody")
    assert result.exit_code == 1 and "no active account" in result.output


def test_replay_activate_and_retriage_commands(app, tmp_path, make_user):
    """replay prints the move matrix and examples; activate switches the ruleset (audited);
    retriage then moves the case."""
    officer = make_user("registration_officer")
    make_user("supervisor", username="sup")
    csv_path = tmp_path / "rates.csv"
    csv_path.write_text("nationality,rate_pct,source,as_of\nAFG,25,Eurostat,2026-03-01\n")
    assert run(app, "import-rates", str(csv_path)).exit_code == 0
    made = date.today() - timedelta(days=5)
    case = intake.register_claim({
        "made_on": made.isoformat(), "registered_on": made.isoformat(), "lodged_on": made.isoformat(),
        "persons": [{"principal": True, "identity": {"family_name": "Rahimi", "given_names": "Farid"},
                     "birth": {"date_of_birth": "1991-01-01", "sex": "M"},
                     "nationality": {"nationalities": ["AFG"]}}]}, acting_user=officer).case
    assert case.track == "regular"
    candidate = modified_ruleset(tmp_path)

    result = run(app, "replay", "--ruleset", candidate)
    assert result.exit_code == 0, result.output
    assert "1 open cases: 1 would change track" in result.output
    assert f"regular -> accelerated: 1  {case.reference}" in result.output

    result = run(app, "activate", candidate, "--as", "sup")
    assert result.exit_code == 0, result.output
    assert "active ruleset: eu-apr-2026@2026.1.1-cli" in result.output
    assert db.session.scalars(select(RulesetVersion.version).where(RulesetVersion.active.is_(True))).one() == \
        "2026.1.1-cli"
    assert db.session.get(Case, case.id).track == "regular"
    again = run(app, "activate", candidate)
    assert again.exit_code == 1 and "already the active ruleset" in again.output

    result = run(app, "retriage", "--as", "sup")
    assert result.exit_code == 0, result.output
    assert "1 open cases examined, 1 re-triaged, 1 changed track" in result.output
    db.session.expire_all()
    assert db.session.get(Case, case.id).track == "accelerated"
    result = run(app, "activate", "unhcr-dcp")
    assert result.exit_code == 0 and "unhcr-dcp@2020.1.0" in result.output
