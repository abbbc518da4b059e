"""Registration, edit and search forms.

The WTForms classes mirror app/intake/schemas.py section by section, so a field's name is its
dotted schema path with dashes (``persons-0-birth-date_of_birth`` for
``persons.0.birth.date_of_birth``). WTForms only carries the data and renders it: every rule is
checked once, by the schema, through the service. ``to_payload`` turns a submitted form into the
nested dict of RegistrationInput (remembering which field each path came from, so the service's
errors land next to the right field), and ``payload_to_formdata`` does the reverse for editing.

Selects never validate their choices here (``validate_choice=False``): a bogus code must reach the
schema, which answers "unknown country code" next to the field instead of a generic message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field as dataclass_field
from functools import lru_cache

from flask_babel import get_locale
from flask_babel import gettext as _
from flask_wtf import FlaskForm
from markupsafe import Markup, escape
from werkzeug.datastructures import MultiDict
from wtforms import (BooleanField, FieldList, Form, FormField, HiddenField, SelectField, SelectMultipleField,
                     StringField, TextAreaField)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import Length
from wtforms.widgets import ListWidget

from app.i18n import lazy_gettext as _l
from app.intake import form_html
from app.intake.form_html import DateInput, EmailInput, TelInput
from app.intake.reference import country_choices, language_choices
from app.intake.schemas import (AUTHENTICITY, CLAIM_GROUNDS, DECISIONS, DOCUMENT_TYPES, EURODAC_CATEGORIES,
                                LOCATION_CONTEXTS, RELATIONSHIPS, STB_BASES, VULNERABILITY_CODES)

# -- labels of coded values (shared by the form and the case page) --------------------------------------

LOCATION_CONTEXT_LABELS = {
    "inland": _l("Inland (at an office or reception centre)"),
    "border_crossing_point": _l("At a border crossing point"),
    "transit_zone": _l("In a transit zone"),
    "apprehended_irregular_crossing": _l("Apprehended crossing the border irregularly"),
    "disembarkation_sar": _l("Disembarked after a search and rescue operation"),
    "relocation": _l("Relocated from another member state"),
}
DOCUMENT_TYPE_LABELS = {
    "passport": _l("Passport"), "national_id": _l("National identity card"),
    "birth_certificate": _l("Birth certificate"), "travel_document": _l("Travel document"),
    "residence_permit": _l("Residence permit"), "driving_licence": _l("Driving licence"),
    "refugee_card": _l("Refugee card"), "other": _l("Other document"),
}
AUTHENTICITY_LABELS = {"not_assessed": _l("Not assessed"), "genuine": _l("Genuine"), "false": _l("False")}
EURODAC_CATEGORY_LABELS = {
    "applicant": _l("Applicant for international protection (category 1)"),
    "irregular_entry": _l("Apprehended crossing irregularly (category 2)"),
    "beneficiary_of_international_protection": _l("Beneficiary of international protection"),
}
RELATIONSHIP_LABELS = {
    "spouse": _l("Spouse"), "partner": _l("Partner"), "child": _l("Child"), "parent": _l("Parent"),
    "sibling": _l("Brother or sister"), "grandparent": _l("Grandparent"), "grandchild": _l("Grandchild"),
    "other_relative": _l("Other relative"), "other": _l("Other"),
}
STB_BASIS_LABELS = {"transit": _l("Transit through the country"), "connection": _l("Connection with the country"),
                    "agreement": _l("Agreement with the country")}
DECISION_LABELS = {
    "pending": _l("Pending"), "granted": _l("Granted"), "rejected": _l("Rejected"),
    "inadmissible": _l("Inadmissible"), "withdrawn": _l("Withdrawn"), "discontinued": _l("Discontinued"),
    "unknown": _l("Not known"),
}
VULNERABILITY_LABELS = {
    "minor": _l("Minor"), "unaccompanied_minor": _l("Unaccompanied minor"), "disability": _l("Disability"),
    "elderly": _l("Elderly person"), "pregnant": _l("Pregnant woman"),
    "lgbtiq": _l("LGBTIQ person"),
    "single_parent_with_minor_children": _l("Single parent with minor children"),
    "trafficking_victim": _l("Victim of human trafficking"), "serious_illness": _l("Serious illness"),
    "mental_disorder_ptsd": _l("Mental disorder, including post-traumatic stress disorder"),
    "torture_rape_serious_violence": _l("Torture, rape or other serious violence"),
    "gender_based_violence": _l("Gender-based violence"),
    "fgm": _l("Female genital mutilation"), "forced_marriage": _l("Forced marriage"),
}
GROUND_LABELS = {
    "race": _l("Race"), "religion": _l("Religion"), "nationality": _l("Nationality"),
    "political_opinion": _l("Political opinion"),
    "particular_social_group": _l("Membership of a particular social group"),
    "sexual_orientation_gender_identity": _l("Sexual orientation or gender identity"),
    "gender": _l("Gender"), "generalised_violence": _l("Generalised violence"),
    "armed_conflict": _l("Armed conflict"), "military_service": _l("Military service"),
    "statelessness": _l("Statelessness"), "economic_hardship": _l("Economic hardship"),
    "medical": _l("Medical reasons"), "family_reunification": _l("Family reunification"), "other": _l("Other"),
}
SEX_LABELS = {"F": _l("Female"), "M": _l("Male"), "X": _l("Other or not specified")}
PRECISION_LABELS = {"day": _l("Exact date known"), "month": _l("Only month and year known"),
                    "year": _l("Only the year known")}
INTERPRETER_GENDER_LABELS = {"any": _l("No preference"), "female": _l("Female interpreter"),
                             "male": _l("Male interpreter")}
TRISTATE_LABELS = {"yes": _l("Yes"), "no": _l("No")}

# The tables above must cover the schema's codes: a new code without a label would show raw.
assert set(LOCATION_CONTEXT_LABELS) == set(LOCATION_CONTEXTS)
assert set(DOCUMENT_TYPE_LABELS) == set(DOCUMENT_TYPES) and set(AUTHENTICITY_LABELS) == set(AUTHENTICITY)
assert set(EURODAC_CATEGORY_LABELS) == set(EURODAC_CATEGORIES) and set(RELATIONSHIP_LABELS) == set(RELATIONSHIPS)
assert set(STB_BASIS_LABELS) == set(STB_BASES) and set(DECISION_LABELS) == set(DECISIONS)
assert set(VULNERABILITY_LABELS) == set(VULNERABILITY_CODES) and set(GROUND_LABELS) == set(CLAIM_GROUNDS)

SECTION_LABELS = {
    "arrival": _l("Arrival"), "identity": _l("Identity"), "birth": _l("Birth"),
    "nationality": _l("Nationality"), "language": _l("Language"), "contact": _l("Contact"),
    "documents": _l("Identity and travel documents"), "biometrics": _l("Biometrics and Eurodac"),
    "history": _l("Previous applications and other countries"), "family": _l("Family"),
    "special_needs": _l("Special needs"), "claim": _l("Claim"), "security": _l("Security"),
}

# Control characters (other than tab and line breaks) never belong in typed text, and PostgreSQL
# refuses NUL in text columns: drop them before anything else sees the value.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(value):
    return _CONTROL.sub("", value) if isinstance(value, str) else value


# -- choices -----------------------------------------------------------------------------------------------

class LocalisedChoices:
    """The choices of a select, built once per language and shared by every form after that: the
    case page and the registration form hold dozens of selects (a country list is 250 choices),
    and building them per field and per request was a fifth of the case page's time. Labels
    follow the user's language because the cache is keyed by it."""

    def __init__(self, build):
        self._build = build
        self._by_locale: dict[str, tuple[tuple[SelectChoice, ...], dict[str, str]]] = {}

    def _entry(self):
        locale = str(get_locale())
        entry = self._by_locale.get(locale)
        if entry is None:
            choices = tuple(self._build())
            entry = self._by_locale[locale] = (choices, {c.value: str(c.label) for c in choices})
        return entry

    def __call__(self) -> list[SelectChoice]:
        return list(self._entry()[0])

    def labels(self) -> dict[str, str]:
        """Code -> label in the current language."""
        return self._entry()[1]


def _coded(labels: dict, blank=None) -> LocalisedChoices:
    """Choices from a label table, in the user's language."""
    def build():
        choices = [SelectChoice(value=code, label=str(label)) for code, label in labels.items()]
        if blank is not None:
            choices.insert(0, SelectChoice(value="", label=str(blank)))
        return choices
    return LocalisedChoices(build)


@lru_cache(maxsize=16)
def _reference_pairs(kind: str, locale: str, blank: str) -> tuple[tuple[str, str], ...]:
    pairs = country_choices(locale) if kind == "country" else language_choices(locale)
    return (("", blank), *pairs)


def _reference(kind: str) -> tuple[tuple[str, str], ...]:
    blank = _("— choose a country —") if kind == "country" else _("— choose a language —")
    return _reference_pairs(kind, str(get_locale()), blank)


_countries = LocalisedChoices(lambda: [SelectChoice(value=code, label=name) for code, name in _reference("country")])
_languages = LocalisedChoices(lambda: [SelectChoice(value=code, label=name) for code, name in _reference("language")])


_BARE_VALUE = re.compile(r"[A-Za-z0-9_-]+")


def _option(code: str, name: str) -> str:
    """One option of a long list, in its shortest valid HTML: a code needs no quotes and an
    option no end tag. Thirteen country and four language lists make up four fifths of the
    registration page; this takes a fifth off it, for the network and for whatever parses it."""
    value = code if _BARE_VALUE.fullmatch(code) else f'"{escape(code)}"'
    return f"<option value={value}>{escape(name)}"


@lru_cache(maxsize=16)
def _rendered_options(pairs: tuple[tuple[str, str], ...]) -> tuple[str, dict[str, str]]:
    """A reference list's options joined, and each option by its code."""
    options = {code: _option(code, name) for code, name in pairs}
    return "".join(options.values()), options


class ReferenceSelect:
    """A <select> of a reference list (about 250 countries, 180 languages). The options are
    rendered once per language and list and reused; only the selected one is marked."""

    def __init__(self, kind: str):
        self.kind = kind

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        all_options, by_code = _rendered_options(_reference(self.kind))
        chosen = by_code.get(field.data) if isinstance(field.data, str) else None
        if chosen is not None:  # codes are unique and each option ends where the next begins
            all_options = all_options.replace(chosen, chosen.replace("<option ", "<option selected ", 1), 1)
        return Markup(  # noqa: S704 - names, values and options are escaped
            f"<select {form_html.attributes(name=field.name, **kwargs)}>{all_options}</select>")


def country(label, **kwargs) -> SelectField:
    return SelectField(label, choices=_countries, validate_choice=False, widget=ReferenceSelect("country"), **kwargs)


def language(label, **kwargs) -> SelectField:
    return SelectField(label, choices=_languages, validate_choice=False, widget=ReferenceSelect("language"),
                       **kwargs)


def coded(label, labels: dict, blank=None, **kwargs) -> SelectField:
    return SelectField(label, choices=_coded(labels, blank), validate_choice=False, widget=form_html.Select(),
                       **kwargs)


class TriState(SelectField):
    """Yes / no / not known: a checkbox cannot say "not known"."""


def tristate(label, **kwargs) -> TriState:
    return TriState(label, choices=_coded(TRISTATE_LABELS, _l("Not known")), validate_choice=False,
                    widget=form_html.Select(), **kwargs)


class CheckboxGroup(SelectMultipleField):
    """A group of checkboxes (vulnerability codes, claim grounds), shown as a fieldset by
    ``form_html.group`` (the templates' ``m.group``)."""

    widget = ListWidget(prefix_label=False)
    option_widget = form_html.CheckboxInput()


class Flag(BooleanField):
    """A single checkbox."""

    widget = form_html.CheckboxInput()


def checkboxes(label, labels: dict, **kwargs) -> CheckboxGroup:
    return CheckboxGroup(label, choices=_coded(labels), validate_choice=False, **kwargs)


def text(label, **kwargs) -> StringField:
    kwargs.setdefault("widget", form_html.TextInput())
    return StringField(label, filters=[clean_text], **kwargs)


def long_text(label, rows: int = 4, **kwargs) -> TextAreaField:
    return TextAreaField(label, filters=[clean_text], render_kw={"rows": rows, "dir": "auto"},
                         widget=form_html.TextArea(), **kwargs)


def date_field(label, **kwargs) -> StringField:
    """A date typed or picked as YYYY-MM-DD; the schema parses it (one message for every form)."""
    return StringField(label, filters=[clean_text], widget=DateInput(), **kwargs)


# -- the registration, section by section ---------------------------------------------------------------

class ArrivalForm(Form):
    location_context = coded(_l("Where was the claim made?"), LOCATION_CONTEXT_LABELS, default="inland")
    entry_date = date_field(_l("Date of entry"))
    entry_place = text(_l("Place of entry"))
    authorised_to_enter = tristate(_l("Authorised to enter the territory?"))
    fulfils_entry_conditions = tristate(_l("Fulfils the entry conditions?"))
    transit_countries = FieldList(country(_l("Transit country")), label=_l("Transit countries"), min_entries=3,
                                  max_entries=30)
    irregular_entry_date = date_field(_l("Date of irregular entry"))
    presented_without_delay = Flag(_l("Presented themselves to the authorities without delay"),
                                           default=True)


class IdentityForm(Form):
    family_name = text(_l("Family name"), render_kw={"autocomplete": "off", "dir": "auto"})
    given_names = text(_l("Given names"), render_kw={"autocomplete": "off", "dir": "auto"})
    aliases = long_text(_l("Other names and spellings"), rows=2,
                        description=_l("One per line: aliases and other transliterations."))
    original_script_name = text(_l("Name in the original script"), render_kw={"dir": "auto"})


class BirthForm(Form):
    date_of_birth = date_field(_l("Date of birth"),
                               description=_l("YYYY-MM-DD. If only the year is known, enter 1 January "
                                              "and choose the precision below."))
    precision = coded(_l("Precision of the date of birth"), PRECISION_LABELS, default="day")
    estimated = Flag(_l("The date of birth is estimated"))
    place_of_birth = text(_l("Place of birth"))
    sex = coded(_l("Sex"), SEX_LABELS, blank=_l("— choose —"))


class NationalityForm(Form):
    nationalities = FieldList(country(_l("Nationality")), label=_l("Nationalities"), min_entries=2, max_entries=5)
    stateless = Flag(_l("Stateless"))
    former_habitual_residence = country(_l("Country of former habitual residence"),
                                        description=_l("Required for a stateless person."))


class LanguageForm(Form):
    languages = FieldList(language(_l("Language spoken")), label=_l("Languages spoken"), min_entries=3,
                          max_entries=10)
    preferred_language = language(_l("Preferred language for the procedure"))
    interpreter_needed = Flag(_l("An interpreter is needed"))
    interpreter_gender = coded(_l("Interpreter gender preference"), INTERPRETER_GENDER_LABELS, default="any")


class ContactForm(Form):
    address = text(_l("Address"))
    reception_centre = text(_l("Reception centre"))
    phone = text(_l("Phone"), widget=TelInput(), description=_l("Digits, spaces and + ( ) - . / only."))
    email = text(_l("Email"), widget=EmailInput())


class DocumentForm(Form):
    type = coded(_l("Document type"), DOCUMENT_TYPE_LABELS, blank=_l("— choose —"))
    number = text(_l("Document number"), render_kw={"autocomplete": "off"})
    issuing_country = country(_l("Issuing country"))
    valid_until = date_field(_l("Valid until"))
    authenticity = coded(_l("Authenticity"), AUTHENTICITY_LABELS, default="not_assessed")
    withheld = Flag(_l("The document is withheld by the authorities"))


class EurodacHitForm(Form):
    member_state = country(_l("Member state"))
    category = coded(_l("Category"), EURODAC_CATEGORY_LABELS, blank=_l("— choose —"))
    hit_date = date_field(_l("Date of the hit"))


class BiometricsForm(Form):
    record_ref = text(_l("Reference of the biometric record"))
    eurodac_hits = FieldList(FormField(EurodacHitForm, label=_l("Eurodac hit")), label=_l("Eurodac hits"),
                             min_entries=1, max_entries=10)
    refused = Flag(_l("The applicant refused to give biometrics"))


class PreviousApplicationForm(Form):
    member_state = country(_l("Member state"))
    decision = coded(_l("Decision"), DECISION_LABELS, default="unknown")
    final = Flag(_l("The decision is final"))
    new_elements = Flag(_l("New elements are presented"))


class ReturnDecisionForm(Form):
    received_on = date_field(_l("Return decision received on"))
    informed_of_consequences = Flag(_l("Informed of the consequences"))


class FirstCountryOfAsylumForm(Form):
    country = country(_l("Country"))
    effective_protection_still_available = Flag(_l("Effective protection is still available there"))
    readmission_possible = Flag(_l("Readmission is possible"))
    guarantee_for_uam = Flag(_l("Guarantees for an unaccompanied minor are given"))


class SafeThirdCountryForm(Form):
    country = country(_l("Country"))
    basis = coded(_l("Basis of the connection"), STB_BASIS_LABELS, blank=_l("— choose —"))
    assessed_safe_for_applicant = Flag(_l("Assessed as safe for this applicant"))
    effective_protection_possible = Flag(_l("Effective protection is possible"))
    readmission_possible = Flag(_l("Readmission is possible"))


class HistoryForm(Form):
    previous_applications = FieldList(FormField(PreviousApplicationForm, label=_l("Previous application")),
                                      label=_l("Previous applications"), min_entries=1, max_entries=10)
    return_decision = FormField(ReturnDecisionForm, label=_l("Return decision"))
    protection_granted_by = country(_l("Protection already granted by"))
    first_country_of_asylum = FormField(FirstCountryOfAsylumForm, label=_l("First country of asylum"))
    safe_third_country = FormField(SafeThirdCountryForm, label=_l("Safe third country"))


class FamilyMemberForm(Form):
    relationship = coded(_l("Relationship"), RELATIONSHIP_LABELS, blank=_l("— choose —"))
    family_name = text(_l("Family name"), render_kw={"dir": "auto"})
    given_names = text(_l("Given names"), render_kw={"dir": "auto"})
    date_of_birth = date_field(_l("Date of birth"))
    member_state = country(_l("Member state where they are"))
    legally_present = Flag(_l("Legally present there"))
    reunification_in_best_interests = Flag(_l("Reunification is in the best interests of the child"))


class FamilyForm(Form):
    unaccompanied_minor = Flag(_l("Unaccompanied minor"))
    age_disputed = Flag(_l("The age is disputed"))
    representative_name = text(_l("Representative"))
    representative_appointed_on = date_field(_l("Representative appointed on"))
    members_elsewhere = FieldList(FormField(FamilyMemberForm, label=_l("Family member in another member state")),
                                  label=_l("Family members in other member states"), min_entries=1, max_entries=20)


class AdequateSupportForm(Form):
    border_location = Flag(_l("Adequate support is available at the border location"), default=True)
    accelerated_procedure = Flag(_l("Adequate support is available in an accelerated procedure"),
                                         default=True)


class SpecialNeedsForm(Form):
    vulnerabilities = checkboxes(_l("Vulnerabilities"), VULNERABILITY_LABELS)
    special_procedural_guarantees_needed = Flag(_l("Special procedural guarantees are needed"))
    adequate_support = FormField(AdequateSupportForm, label=_l("Adequate support"))
    notes = long_text(_l("Notes on special needs"))


class ClaimForm(Form):
    grounds = checkboxes(_l("Grounds of the claim"), GROUND_LABELS)
    statement = long_text(_l("Short statement of reasons"), rows=6)


class SecurityForm(Form):
    flag = Flag(_l("Security flag"))
    basis = long_text(_l("Basis of the security flag (restricted)"))


class PersonForm(Form):
    principal = Flag(_l("This person is the principal applicant"))
    relationship = coded(_l("Relationship to the principal applicant"), RELATIONSHIP_LABELS,
                         blank=_l("— not a dependant —"))
    identity = FormField(IdentityForm, label=SECTION_LABELS["identity"])
    birth = FormField(BirthForm, label=SECTION_LABELS["birth"])
    nationality = FormField(NationalityForm, label=SECTION_LABELS["nationality"])
    language = FormField(LanguageForm, label=SECTION_LABELS["language"])
    contact = FormField(ContactForm, label=SECTION_LABELS["contact"])
    documents = FieldList(FormField(DocumentForm, label=_l("Document")), label=SECTION_LABELS["documents"],
                          min_entries=1, max_entries=10)
    biometrics = FormField(BiometricsForm, label=SECTION_LABELS["biometrics"])
    history = FormField(HistoryForm, label=SECTION_LABELS["history"])
    family = FormField(FamilyForm, label=SECTION_LABELS["family"])
    special_needs = FormField(SpecialNeedsForm, label=SECTION_LABELS["special_needs"])
    claim = FormField(ClaimForm, label=SECTION_LABELS["claim"])
    security = FormField(SecurityForm, label=SECTION_LABELS["security"])


MAX_PERSONS = 30


class RegistrationForm(FlaskForm):
    draft_id = HiddenField()
    made_on = date_field(_l("Date the claim was made"))
    made_place = text(_l("Place where the claim was made"))
    registered_on = date_field(_l("Date of registration"),
                               description=_l("Registration more than 5 days after the claim was made is "
                                              "allowed, and flagged as late."))
    lodged_on = date_field(_l("Date the claim was lodged"), description=_l("Leave empty if not lodged yet."))
    good_cause_for_not_lodging = Flag(_l("Good cause for not lodging the claim in time"))
    arrival = FormField(ArrivalForm, label=SECTION_LABELS["arrival"])
    persons = FieldList(FormField(PersonForm, label=_l("Person")), label=_l("Applicants"), min_entries=1,
                        max_entries=MAX_PERSONS)


class RegistrationHead(FlaskForm):
    """What a blank registration page renders besides its cached fields (views._blank_fields): the
    CSRF token and an empty draft id, without building a whole registration form."""

    draft_id = HiddenField()


class EditPersonForm(PersonForm):
    # The saved person this entry edits (a random row id, never personal data; empty for a person
    # added on this edit). It travels with the entry when another entry is removed, so people are
    # matched by identity, not position; the service checks it belongs to the case.
    person_id = HiddenField()


class EditForm(RegistrationForm):
    expected_version = HiddenField()  # optimistic locking: the case version this form was opened at
    reference = HiddenField()  # shown in the heading only
    persons = FieldList(FormField(EditPersonForm, label=_l("Person")), label=_l("Applicants"), min_entries=1,
                        max_entries=MAX_PERSONS)


# Names of the form's own plumbing, never part of the registration payload.
PLUMBING = frozenset({"csrf_token", "draft_id", "expected_version", "reference", "person_id"})
# Repeatable groups shown with one blank entry: a blank entry is "nothing entered", not an error.
OPTIONAL_ENTRIES = frozenset({"documents", "eurodac_hits", "previous_applications", "members_elsewhere"})
# Optional sub-sections: left blank, they are absent (None), not a section with missing fields.
OPTIONAL_SUBSECTIONS = frozenset({"return_decision", "first_country_of_asylum", "safe_third_country"})
LINE_LISTS = frozenset({"aliases"})  # textareas holding a list, one entry per line


# -- form -> payload -----------------------------------------------------------------------------------------

@dataclass
class PathMap:
    """Where each payload path came from, for putting the service's errors back on the form."""

    fields: dict[str, object] = dataclass_field(default_factory=dict)  # dotted path -> field

    def add(self, path: str, field) -> None:
        self.fields[path] = field

    def field_for(self, path: str):
        """The field a dotted error path belongs to: the deepest one that exists (an error on
        ``persons.0.identity.aliases.2`` belongs to the aliases box)."""
        parts = path.split(".")
        while parts:
            found = self.fields.get(".".join(parts))
            if found is not None:
                return found
            parts.pop()
        return None


def is_blank(field) -> bool:
    """True when nothing was entered: every value empty or still its default."""
    if isinstance(field, FormField):
        return all(is_blank(sub) for sub in field.form)
    if isinstance(field, FieldList):
        return all(is_blank(entry) for entry in field.entries)
    data = field.data
    if isinstance(field, BooleanField):
        return bool(data) == bool(field.default)
    if data in (None, "", [], ()):
        return True
    return data == field.default


def is_empty(field) -> bool:
    """True when a section holds nothing at all (defaults count as something: "inland" is a fact)."""
    if isinstance(field, FormField):
        return all(is_empty(sub) for sub in field.form)
    if isinstance(field, FieldList):
        return all(is_blank(entry) if isinstance(entry, FormField) else is_empty(entry) for entry in field.entries)
    return field.data in (None, "", [], (), False)


def _value(field, path: str, mapping: PathMap):
    """The payload value of one field (``omit`` when it should be absent)."""
    mapping.add(path, field)
    if isinstance(field, FormField):
        return _section(field.form, path, mapping)
    if isinstance(field, FieldList):
        values = []
        for entry in field.entries:
            if isinstance(entry, FormField):
                if field.short_name in OPTIONAL_ENTRIES and is_blank(entry):
                    continue
                values.append(_value(entry, f"{path}.{len(values)}", mapping))
            else:
                value = _value(entry, f"{path}.{len(values)}", mapping)
                if value is not OMIT:
                    values.append(value)
        return values
    if isinstance(field, BooleanField):
        return bool(field.data)
    if isinstance(field, SelectMultipleField):
        return [clean_text(v) for v in (field.data or []) if isinstance(v, str)]
    if isinstance(field, TriState):
        return {"": OMIT, None: OMIT, "yes": True, "no": False}.get(field.data, field.data)
    data = clean_text(field.data)
    if field.short_name in LINE_LISTS:
        return [line.strip() for line in (data or "").splitlines() if line.strip()]
    if data is None or (isinstance(data, str) and not data.strip()):
        return OMIT
    return data.strip() if isinstance(data, str) else data


OMIT = object()


def _section(form, prefix: str, mapping: PathMap) -> dict:
    out = {}
    for field in form:
        name = field.short_name
        if name in PLUMBING:
            continue
        path = f"{prefix}.{name}" if prefix else name
        if name in OPTIONAL_SUBSECTIONS and is_blank(field):
            mapping.add(path, field)
            continue
        value = _value(field, path, mapping)
        if value is not OMIT:
            out[name] = value
    return out


def to_payload(form: RegistrationForm) -> tuple[dict, PathMap]:
    """The submitted form as the nested dict RegistrationInput expects, and the path mapping."""
    mapping = PathMap()
    return _section(form, "", mapping), mapping


# -- payload -> form data ----------------------------------------------------------------------------------

TRISTATE_KEYS = frozenset({"authorised_to_enter", "fulfils_entry_conditions"})
MULTI_VALUE_KEYS = frozenset({"vulnerabilities", "grounds"})


def payload_to_formdata(payload: dict) -> MultiDict:
    """A registration payload (e.g. ``services.registration_payload(case)``) as the form data
    the registration form would have posted: the edit page starts from it."""
    out = MultiDict()

    def walk(value, name: str, key: str):
        if value is None:
            return
        if key in TRISTATE_KEYS:
            out.add(name, "yes" if value else "no")
        elif key in MULTI_VALUE_KEYS:
            for item in value:
                out.add(name, item)
        elif key in LINE_LISTS:
            out.add(name, "\n".join(value))
        elif isinstance(value, dict):
            for sub_key, sub_value in value.items():
                walk(sub_value, f"{name}-{sub_key}" if name else sub_key, sub_key)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{name}-{index}", key)
        elif isinstance(value, bool):
            if value:
                out.add(name, "y")
        else:
            out.add(name, str(value))

    walk(payload, "", "")
    return out


def with_person_ids(formdata: MultiDict, person_ids: list[str]) -> MultiDict:
    """Edit form data with each person entry carrying the id of the saved person it shows."""
    for index, person_id in enumerate(person_ids):
        formdata[f"persons-{index}-person_id"] = person_id
    return formdata


def submitted_person_ids(form) -> list[str | None]:
    """The saved person each entry of a submitted edit form edits (None: added on this edit).
    Whatever was posted is passed on as it is: the service decides what it names."""
    return [(entry.form.person_id.data or None) for entry in form.persons.entries]


def raw_formdata(formdata: MultiDict) -> dict[str, list[str]]:
    """What a draft keeps: the fields as typed (no buttons, no token)."""
    return {key: formdata.getlist(key) for key in formdata
            if key not in ("csrf_token", "action", "add", "remove") and not key.startswith("duplicate")}


def drop_entry(formdata: MultiDict, entry_id: str) -> MultiDict:
    """Form data without one entry of a repeatable group (``persons-1``, ``persons-0-documents-2``);
    the FieldList renumbers the entries that follow."""
    prefix = entry_id + "-"
    kept = MultiDict()
    for key, value in formdata.items(multi=True):
        if key != entry_id and not key.startswith(prefix):
            kept.add(key, value)
    return kept


def find_field(form, field_id: str):
    """The field whose id is ``field_id`` (ids follow the nesting: ``persons-0-documents``)."""
    stack = list(form)
    while stack:
        field = stack.pop()
        if field.id == field_id:
            return field
        if not field_id.startswith(field.id + "-"):
            continue
        if isinstance(field, FormField):
            stack.extend(field.form)
        elif isinstance(field, FieldList):
            stack.extend(field.entries)
    return None


def first_input(field):
    """The first focusable control inside a section (where an error summary link should land)."""
    if isinstance(field, FormField):
        for sub in field.form:
            found = first_input(sub)
            if found is not None:
                return found
        return None
    if isinstance(field, FieldList):
        return first_input(field.entries[0]) if field.entries else None
    if isinstance(field, CheckboxGroup):
        return f"{field.id}-0"
    return field.id


# -- describing fields: error summary, conflict table, case page -------------------------------------------

def field_order(form) -> dict[str, int]:
    """Field ids in page order (the error summary lists errors in the order of the page)."""
    order: dict[str, int] = {}

    def visit(field):
        order.setdefault(field.id, len(order))
        if isinstance(field, FormField):
            for sub in field.form:
                visit(sub)
        elif isinstance(field, FieldList):
            for entry in field.entries:
                visit(entry)

    for field in form:
        visit(field)
    return order


def _entry_label(field_list, entry, index: int) -> str:
    if field_list.short_name == "persons":
        return _("Person %(number)d", number=index + 1)
    return f"{entry.label.text} {index + 1}"


def _resolve(form, segments: list[str]):
    """Follow a path (``persons.0.birth.sex`` split) through the form: the labels met on the way
    and the field at its end (None when the path leaves the form)."""
    labels: list[str] = []
    node = form
    for position, segment in enumerate(segments):
        if isinstance(node, FormField):
            node = node.form
        if isinstance(node, FieldList):
            if not segment.isdigit() or not node.entries:
                return labels, None
            index = int(segment)
            # A path beyond the entries shown (a person added by someone else) reads like the first.
            entry = node.entries[index] if index < len(node.entries) else node.entries[0]
            labels.append(_entry_label(node, entry, index))
            node = entry
            continue
        try:
            child = node[segment]
        except (KeyError, TypeError):
            return labels, None
        if not isinstance(child, FieldList) or position == len(segments) - 1:
            labels.append(str(child.label.text))
        node = child
    return labels, node


def describe(form, field_id: str) -> str:
    """``persons-1-birth-date_of_birth`` -> "Person 2 › Birth › Date of birth"."""
    return " › ".join(_resolve(form, field_id.split("-"))[0])


def describe_payload_path(form, path: str) -> str:
    labels = _resolve(form, path.split("."))[0]
    return " › ".join(labels) if labels else path


def field_at(form, path: str):
    return _resolve(form, path.split("."))[1]


def _choice_labels(field) -> dict[str, str]:
    source = getattr(field, "_choices_callable", None)
    if isinstance(source, LocalisedChoices):
        return source.labels()
    return {choice.value: str(choice.label) for choice in (field.choices or [])}


def format_value(field, value) -> str:
    """A stored or submitted value as the user reads it: names for codes, yes or no."""
    if value is None or value == "" or value == [] or value == {}:
        return _("not given")
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if isinstance(field, FieldList) and isinstance(value, list):
        entry = field.entries[0] if field.entries else None
        return ", ".join(format_value(entry, item) for item in value)
    if isinstance(field, SelectField):
        labels = _choice_labels(field)
        if isinstance(value, list):
            return ", ".join(labels.get(str(item), str(item)) for item in value)
        return labels.get(str(value), str(value))
    if isinstance(value, list):
        return ", ".join(str(item) for item in value)
    return str(value)


def field_data(field):
    """The value a field holds, in the payload's terms."""
    if isinstance(field, FieldList):
        return [value for entry in field.entries if (value := field_data(entry)) not in (None, "", [])]
    if isinstance(field, TriState):
        return {"yes": True, "no": False}.get(field.data)
    if isinstance(field, BooleanField):
        return bool(field.data)
    if isinstance(field, SelectMultipleField):
        return list(field.data or [])
    if field.short_name in LINE_LISTS:
        return [line.strip() for line in (field.data or "").splitlines() if line.strip()]
    return field.data


def display_value(field) -> str:
    return format_value(field, field_data(field))


# -- search ------------------------------------------------------------------------------------------------

class SearchForm(FlaskForm):
    reference = text(_l("Case reference"), validators=[Length(max=40)], render_kw={"autocomplete": "off"})
    document_number = text(_l("Document number"), validators=[Length(max=60)], render_kw={"autocomplete": "off"})
    family_name = text(_l("Family name"), validators=[Length(max=200)],
                       render_kw={"autocomplete": "off", "dir": "auto"})
    given_names = text(_l("Given names"), validators=[Length(max=200)],
                       render_kw={"autocomplete": "off", "dir": "auto"})
    date_of_birth = date_field(_l("Date of birth"), description=_l("YYYY-MM-DD"))
