"""The duplicate check at scale: with a common name, hundreds of people share keys with a new
registration. Only the most telling of them are looked at (a key few people hold outweighs a key
a crowd holds), and only those whose date of birth and nationality leave a chance have their
names decrypted and compared."""

from __future__ import annotations

import pytest

from app import crypto
from app.intake import matching, services
from tests.integration.test_import_batch import claim, officer  # noqa: F401 - the fixture


def test_a_key_few_hold_outweighs_keys_a_crowd_holds():
    crowd = [f"crowd-{n}" for n in range(5)]
    holders = {b"common-1": crowd, b"common-2": crowd, b"common-3": crowd, b"rare": ["duplicate"],
               b"unrelated": ["someone-else"]}
    ranked = services.most_telling_holders([b"common-1", b"common-2", b"common-3", b"rare", b"absent"], holders, 3)
    # The crowd shares three keys each, the duplicate one; by count the duplicate would come last.
    assert ranked == ["duplicate", "crowd-0", "crowd-1"]
    assert services.most_telling_holders([b"absent"], holders, 3) == []


def test_the_duplicate_is_found_behind_a_crowd_of_namesakes(app, officer, monkeypatch):  # noqa: F811
    """Five namesakes born the same year share four keys each with the new registration; the
    person registered before under another transliteration of the given name shares only the
    full-date key. With room for three candidates, that person is the one flagged."""
    probe = matching.Identity("Kovalenko", "Sergey", date_of_birth=services.date(1985, 4, 12), nationality="UKR")
    earlier = matching.Identity("Kovalenko", "Serhii", date_of_birth=services.date(1985, 4, 12), nationality="UKR")
    assert matching.score(probe, earlier).is_likely_duplicate  # the premise: a real duplicate
    for dob in ("1985-01-20", "1985-02-21", "1985-03-22", "1985-06-23", "1985-07-24"):
        services.register_claim(claim("Kovalenko", "Sergey", dob, nationality="UKR", document=None),
                                acting_user=officer)
    first_reference = services.register_claim(claim("Kovalenko", "Serhii", "1985-04-12", nationality="UKR",
                                                    document=None), acting_user=officer).case.reference
    monkeypatch.setattr(services, "MAX_CANDIDATES_LOOKED_UP", 3)
    with pytest.raises(services.PossibleDuplicates) as raised:
        services.register_claim(claim("Kovalenko", "Sergey", "1985-04-12", nationality="UKR", document=None),
                                acting_user=officer)
    [found] = raised.value.candidates[0]
    assert (found.case_reference, found.given_names) == (first_reference, "Serhii")


def test_names_are_decrypted_only_where_date_and_nationality_leave_a_chance(app, officer, monkeypatch):  # noqa: F811
    same_reference = services.register_claim(claim("Haddad", "Omar", "1985-04-12", nationality="SYR", document=None),
                                             acting_user=officer).case.reference
    services.register_claim(claim("Haddad", "Omar", "1985-04-12", nationality="IRQ", document=None),
                            acting_user=officer, duplicate_decisions={0: "new"})
    services.register_claim(claim("Haddad", "Omar", "1985-09-30", nationality="SYR", document=None),
                            acting_user=officer)
    opened: list[tuple[str, ...]] = []
    real_opened_columns = crypto.opened_columns

    def recording(model, row_id, stored):
        opened.append(tuple(sorted(stored)))
        return real_opened_columns(model, row_id, stored)

    monkeypatch.setattr(crypto, "opened_columns", recording)
    with pytest.raises(services.PossibleDuplicates) as raised:
        services.register_claim(claim("Haddad", "Omar", "1985-04-12", nationality="SYR", document=None),
                                acting_user=officer)
    assert [c.case_reference for c in raised.value.candidates[0]] == [same_reference]
    # All three namesakes share keys and have their birth read; only the one born that day with
    # the same nationality has a chance, and only their names are decrypted.
    assert sorted(opened) == [("birth",), ("birth",), ("birth",), ("identity",)]
