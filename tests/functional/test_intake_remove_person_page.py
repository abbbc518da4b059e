"""Removing a saved dependant on the edit page: the Remove button takes them off the form, saving
removes them from the case and everyone else keeps their record; a forged person id or a
person another record names is refused on the page (422, the message shown), nothing saved."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import NamedTuple

import pytest
from sqlalchemy import select

from app.extensions import db
from app.intake import services as intake
from app.intake.forms import drop_entry
from app.intake.models import Case, Person
from test_intake_support import form_values, person_fields, post_form, registration_fields, text_of


@pytest.fixture
def case(signed_in) -> Case:
    """A principal and two children, registered through the form."""
    browser, _user = signed_in("registration_officer")
    response = browser.post("/cases/register", registration_fields(
        person_fields(0, family="Haddad", given="Omar", dob="1985-04-12", principal=True),
        person_fields(1, family="Haddad", given="Sami", dob="2015-02-14", relationship="child"),
        person_fields(2, family="Haddad", given="Lina", dob="2018-07-01", relationship="child")))
    assert response.status_code == 302, text_of(response)[:1000]
    return db.session.scalars(select(Case)).one()


class StillOpen(NamedTuple):
    """The second officer's edit page, opened before the first officer's removal was saved."""

    browser: object
    url: str
    values: object  # the form values the page still shows


@pytest.fixture
def removed_by_another(signed_in, case) -> Callable[[str], StillOpen]:
    """Two officers open the case's edit page; the first presses Remove on ``entry`` (e.g.
    "persons-2") and saves. Returns the second officer's page, opened before that save."""
    def remove(entry: str) -> StillOpen:
        first, _ = signed_in("registration_officer")
        second, _ = signed_in("registration_officer")
        url = f"/cases/{case.id}/edit"
        first_values = form_values(text_of(first.get(url)), url)
        second_values = form_values(text_of(second.get(url)), url)
        page = text_of(post_form(first, url, first_values, remove=entry))
        assert post_form(first, url, form_values(page, url), action="save").status_code == 302
        return StillOpen(second, url, second_values)

    return remove


def headings(page: str) -> list[str]:
    """The person headings of the case page, tags stripped."""
    return [re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", h)).strip()
            for h in re.findall(r'<h2 id="persons-\d+-title">(.*?)</h2>', page, re.S)]


def test_remove_dependant_two_of_three_and_save(signed_in, case):
    """Remove on dependant Sami (person 2 of 3), then Save: the case page shows the principal and
    Lina, who kept her record (same id)."""
    browser, _user = signed_in("registration_officer")
    url = f"/cases/{case.id}/edit"
    ids = [p.id for p in case.persons]
    page = text_of(browser.get(url))
    assert f'name="persons-1-person_id" type="hidden" value="{ids[1]}"' in page
    page = text_of(post_form(browser, url, form_values(page, url), remove="persons-1"))
    values = form_values(page, url)
    assert values["persons-1-identity-given_names"] == "Lina" and values["persons-1-person_id"] == ids[2]
    assert "persons-2-identity-given_names" not in values

    response = post_form(browser, url, values, action="save")
    assert response.status_code == 302, text_of(response)[:2000]
    shown = text_of(browser.get(response.headers["Location"]))
    assert f"Case {case.reference} saved." in shown
    assert headings(shown) == ["Person 1: principal applicant: Haddad, Omar", "Person 2: dependant: Haddad, Lina"]
    db.session.expire_all()
    assert [p.id for p in db.session.get(Case, case.id).persons] == [ids[0], ids[2]]
    assert db.session.get(Person, ids[1]) is None


def test_a_forged_person_id_is_refused_on_the_page(signed_in, case):
    """A person id that is not the case's answers 422 with the message next to that person; the
    edit typed alongside is not saved."""
    browser, _user = signed_in("registration_officer")
    url = f"/cases/{case.id}/edit"
    values = form_values(text_of(browser.get(url)), url)
    response = post_form(browser, url, values, action="save", **{"persons-1-person_id": "f" * 32,
                                                                   "persons-0-identity-given_names": "Changed"})
    page = text_of(response)
    assert response.status_code == 422
    assert "This person is not part of this case, or was removed since the page was opened." in page
    db.session.expire_all()
    assert [p.identity["given_names"] for p in db.session.get(Case, case.id).persons] == ["Omar", "Sami", "Lina"]


def test_a_person_removed_by_someone_else_is_refused_not_recreated(removed_by_another, case):
    """Two officers open the case; the first removes Lina; the second's save (after the conflict
    page) still carries Lina's id: refused with the reload message, and Lina is not written back
    under a new id."""
    second, url, second_values = removed_by_another("persons-2")

    conflict = post_form(second, url, second_values, action="save")
    assert conflict.status_code == 409
    again = post_form(second, url, form_values(text_of(conflict), url), action="save")
    assert again.status_code == 422
    assert "was removed since the page was opened" in text_of(again)
    db.session.expire_all()
    assert [p.identity["given_names"] for p in db.session.get(Case, case.id).persons] == ["Omar", "Sami"]


def test_a_crafted_removal_of_the_principal_is_refused_on_the_page(signed_in, case):
    """The page offers no Remove for the principal; a post leaving them out anyway (a dependant
    promoted in their place) answers 422 with the message above the people, nothing saved."""
    browser, _user = signed_in("registration_officer")
    url = f"/cases/{case.id}/edit"
    values = drop_entry(form_values(text_of(browser.get(url)), url), "persons-0")
    values = {key.replace("persons-1-", "persons-0-").replace("persons-2-", "persons-1-"): value
              for key, value in values.items(multi=True)}
    values["persons-0-principal"] = "y"
    response = browser.client.post(url, data={**values, "action": "save"})
    assert response.status_code == 422
    assert "The principal applicant cannot be removed from the registration." in text_of(response)
    db.session.expire_all()
    assert len(db.session.get(Case, case.id).persons) == 3


def conflict_rows(page: str) -> set[str]:
    table = re.search(r'<table class="conflict-table">.*?</table>', page, re.S).group(0)
    return {re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", row)).strip()
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>")[1], re.S)}


def test_conflict_after_someone_removed_a_dependant_lines_people_up_by_identity(removed_by_another):
    """The first officer removes Sami; the second, still showing Sami, changes Lina's address:
    the conflict table shows Sami's values as no longer saved and only the address for Lina,
    never Lina's saved name against Sami's."""
    second, url, second_values = removed_by_another("persons-1")

    response = post_form(second, url, second_values, action="save", **{"persons-2-contact-address": "Room 7"})
    assert response.status_code == 409
    rows = conflict_rows(text_of(response))
    assert "Person 3 › Contact › Address persons.2.contact.address not given Room 7" in rows
    assert "Person 2 › Identity › Given names persons.1.identity.given_names not given Sami" in rows
    assert not [row for row in rows if row.startswith("Person 3 › Identity")]
    assert not [row for row in rows if "Lina" in row]


def test_a_person_another_record_refers_to_has_no_remove_button(signed_in, case):
    """Lina was since registered again and confirmed as the same individual: the edit page offers
    Remove for Sami only, says why Lina stays, and a forged Remove press for her is ignored."""
    browser, user = signed_in("registration_officer")
    lina = case.persons[2]
    intake.register_claim({"made_on": case.made_on.isoformat(), "registered_on": case.registered_on.isoformat(),
                           "persons": [{"principal": True, "identity": {"family_name": "Haddad", "given_names": "Lina"},
                                        "birth": {"date_of_birth": "2018-07-01", "sex": "M"},
                                        "nationality": {"nationalities": ["SYR"]}}]},
                          acting_user=user, duplicate_decisions={0: lina.id})
    url = f"/cases/{case.id}/edit"
    page = text_of(browser.get(url))
    assert 'name="remove" value="persons-1"' in page and 'name="remove" value="persons-2"' not in page
    assert "This person cannot be removed from the registration" in page
    page = text_of(post_form(browser, url, form_values(page, url), remove="persons-2"))
    assert form_values(page, url)["persons-2-person_id"] == lina.id
