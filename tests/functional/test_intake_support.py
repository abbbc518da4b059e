"""Shared helpers for the intake page tests (no tests here): a complete family registration as
the registration form posts it, and small page readers."""

from __future__ import annotations

import html
import re
from datetime import date, timedelta
from html.parser import HTMLParser

from sqlalchemy import func, select
from werkzeug.datastructures import MultiDict

from app.extensions import db
from app.intake.models import Case

TODAY = date.today()


def days_ago(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


def person_fields(index: int, *, family: str, given: str, dob: str, sex: str = "M", nationality: str = "SYR",
                  principal: bool = False, relationship: str | None = None, documents=()) -> dict:
    p = f"persons-{index}-"
    data = {
        p + "identity-family_name": family,
        p + "identity-given_names": given,
        p + "birth-date_of_birth": dob,
        p + "birth-precision": "day",
        p + "birth-sex": sex,
        p + "nationality-nationalities-0": nationality,
        p + "language-interpreter_gender": "any",
        p + "special_needs-adequate_support-border_location": "y",
        p + "special_needs-adequate_support-accelerated_procedure": "y",
    }
    if principal:
        data[p + "principal"] = "y"
    if relationship:
        data[p + "relationship"] = relationship
    for d, (doc_type, number, country) in enumerate(documents):
        data.update({f"{p}documents-{d}-type": doc_type, f"{p}documents-{d}-number": number,
                     f"{p}documents-{d}-issuing_country": country,
                     f"{p}documents-{d}-authenticity": "not_assessed"})
    return data


def registration_fields(*persons: dict, made: str | None = None, registered: str | None = None,
                        **extra) -> dict:
    data = {"made_on": made or days_ago(3), "registered_on": registered or days_ago(2),
            "arrival-location_context": "inland", "arrival-presented_without_delay": "y", "action": "register"}
    for person in persons:
        data.update(person)
    data.update(extra)
    return data


def single(family="Haddad", given="Omar", dob="1985-04-12", **kwargs) -> dict:
    return registration_fields(person_fields(0, family=family, given=given, dob=dob, principal=True), **kwargs)


def case_count() -> int:
    db.session.expire_all()
    return db.session.scalar(select(func.count()).select_from(Case))


def text_of(response) -> str:
    return response.get_data(as_text=True)


def errors_near(page: str, field_id: str) -> str:
    """The error list rendered next to a field (or under a section legend)."""
    match = re.search(rf'<ul class="errors[^"]*" id="{re.escape(field_id)}-error">(.*?)</ul>', page, re.S)
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))) if match else ""


def summary_links(page: str) -> list[str]:
    block = re.search(r'<div class="error-summary".*?</div>', page, re.S)
    return re.findall(r'<a href="#([^"]+)"', block.group(0)) if block else []


class _FormReader(HTMLParser):
    """Reads the registration form like a browser would submit it (buttons excluded)."""

    def __init__(self, form_action: str):
        super().__init__(convert_charrefs=True)
        self.action = form_action
        self.inside = False
        self.values: list[tuple[str, str]] = []
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._option_value: str | None = None
        self._textarea: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form" and a.get("action") == self.action:
            self.inside = True
        if not self.inside:
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("submit", "button") or not a.get("name"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values.append((a["name"], a.get("value", "on")))
            else:
                self.values.append((a["name"], a.get("value") or ""))
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option" and self._select is not None:
            self._options.append((a.get("value", ""), "selected" in a))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), []

    def handle_data(self, data):
        if self._textarea is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select" and self._select is not None:
            chosen = [value for value, selected in self._options if selected] or [self._options[0][0]]
            self.values.append((self._select, chosen[0]))
            self._select = None
        elif tag == "textarea" and self._textarea is not None:
            self.values.append((self._textarea, "".join(self._text).removeprefix("\n").removeprefix("\r\n")))
            self._textarea = None


def form_values(page: str, action: str) -> MultiDict:
    """The fields of the form posting to ``action``, as a browser would send them unchanged."""
    reader = _FormReader(action)
    reader.feed(page)
    return MultiDict(reader.values)


def post_form(browser, url: str, values: MultiDict, **changes):
    """Post ``values`` to ``url`` with ``changes`` applied (None removes a field)."""
    data = MultiDict(values)
    for key, value in changes.items():
        data.pop(key, None)
        if value is not None:
            data[key] = value
    return browser.client.post(url, data=data)
