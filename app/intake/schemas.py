"""The registration input: one typed shape for the form, the JSONL import and the API.

Pydantic parses and checks types and reference codes, collecting every failure (not only the
first) with its location, e.g. ``("persons", 0, "birth", "date_of_birth")``. The cross-field
rules of REGISTRATION.md (date order, minors, the principal applicant) are ``model_validator``s
here too, so every entry point applies exactly the same rules.

Flags are not errors: a late registration or an unaccompanied minor without a representative
is allowed and recorded, with its deadline (see ``registration_flags``).
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, EmailStr, Field, StringConstraints,
                      ValidationError, ValidationInfo, field_validator, model_validator)

from pydantic_core import InitErrorDetails, PydanticCustomError

from app.intake.reference import country_codes, language_codes

VULNERABILITY_CODES = (
    "minor", "unaccompanied_minor", "disability", "elderly", "pregnant", "lgbtiq",
    "single_parent_with_minor_children", "trafficking_victim", "serious_illness",
    "mental_disorder_ptsd", "torture_rape_serious_violence", "gender_based_violence",
    "fgm", "forced_marriage",
)
CLAIM_GROUNDS = (
    "race", "religion", "nationality", "political_opinion", "particular_social_group",
    "sexual_orientation_gender_identity", "gender", "generalised_violence", "armed_conflict",
    "military_service", "statelessness", "economic_hardship", "medical", "family_reunification",
    "other",
)
LOCATION_CONTEXTS = ("inland", "border_crossing_point", "transit_zone", "apprehended_irregular_crossing",
                     "disembarkation_sar", "relocation")
DOCUMENT_TYPES = ("passport", "national_id", "birth_certificate", "travel_document", "residence_permit",
                  "driving_licence", "refugee_card", "other")
AUTHENTICITY = ("not_assessed", "genuine", "false")
EURODAC_CATEGORIES = ("applicant", "irregular_entry", "beneficiary_of_international_protection")
RELATIONSHIPS = ("spouse", "partner", "child", "parent", "sibling", "grandparent", "grandchild",
                 "other_relative", "other")
STB_BASES = ("transit", "connection", "agreement")
DECISIONS = ("pending", "granted", "rejected", "inadmissible", "withdrawn", "discontinued", "unknown")

def N_(message: str) -> str:
    """Marks a message for translation (extracted by pybabel with -k N_); translated on display."""
    return message


LATE_REGISTRATION_DAYS = 5  # APR Art 27: registration within 5 days of the application being made


def _country(code: str) -> str:
    code = code.strip().upper()
    if code not in country_codes():
        raise ValueError(N_("unknown country code"))
    return code


def _language(code: str) -> str:
    code = code.strip().lower()
    if code not in language_codes():
        raise ValueError(N_("unknown language code"))
    return code


def _not_future(value: date | None) -> date | None:
    if value is not None and value > date.today():
        raise ValueError(N_("date in the future"))
    return value


Country = Annotated[str, AfterValidator(_country)]
Language = Annotated[str, AfterValidator(_language)]
PastDate = Annotated[date, AfterValidator(_not_future)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=200)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=20_000)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Arrival(Section):
    location_context: Literal[LOCATION_CONTEXTS] = "inland"  # type: ignore[valid-type]
    entry_date: PastDate | None = None
    entry_place: ShortText | None = None
    authorised_to_enter: bool | None = None
    fulfils_entry_conditions: bool | None = None
    transit_countries: list[Country] = Field(default_factory=list, max_length=30)
    irregular_entry_date: PastDate | None = None
    presented_without_delay: bool = True


class Identity(Section):
    family_name: Name = ""
    given_names: Name = ""
    aliases: list[Name] = Field(default_factory=list, max_length=20)
    original_script_name: Name | None = None

    @model_validator(mode="after")
    def a_name_is_given(self):
        if not self.family_name and not self.given_names:
            raise ValueError(N_("enter a family name or given names (some people have only one name)"))
        return self


class Birth(Section):
    date_of_birth: PastDate | None = None
    precision: Literal["day", "month", "year"] = "day"
    estimated: bool = False
    place_of_birth: ShortText | None = None
    sex: Literal["F", "M", "X"]


class Nationality(Section):
    nationalities: list[Country] = Field(default_factory=list, max_length=5)
    stateless: bool = False
    former_habitual_residence: Country | None = None

    @model_validator(mode="after")
    def nationality_or_stateless(self):
        if self.stateless and self.nationalities:
            raise ValueError(N_("a stateless person has no nationality: remove the nationalities or untick stateless"))
        if not self.stateless and not self.nationalities:
            raise ValueError(N_("choose at least one nationality, or mark the person stateless"))
        if self.stateless and not self.former_habitual_residence:
            raise ValueError(N_("for a stateless person, give the country of former habitual residence"))
        return self


class LanguageSection(Section):
    languages: list[Language] = Field(default_factory=list, max_length=10)
    preferred_language: Language | None = None
    interpreter_needed: bool = False
    interpreter_gender: Literal["any", "female", "male"] = "any"

    @model_validator(mode="after")
    def preferred_is_spoken(self):
        if self.preferred_language and self.preferred_language not in self.languages:
            self.languages.append(self.preferred_language)
        if self.interpreter_needed and not self.preferred_language:
            raise ValueError(N_("an interpreter is needed: choose the preferred language"))
        return self


class Contact(Section):
    address: ShortText | None = None
    reception_centre: ShortText | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40,
                                            pattern=r"^\+?[0-9 ()./-]{5,40}$")] | None = None
    email: EmailStr | None = None


class Document(Section):
    type: Literal[DOCUMENT_TYPES]  # type: ignore[valid-type]
    number: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] | None = None
    issuing_country: Country | None = None
    valid_until: date | None = None
    authenticity: Literal[AUTHENTICITY] = "not_assessed"  # type: ignore[valid-type]
    withheld: bool = False


class EurodacHit(Section):
    member_state: Country
    category: Literal[EURODAC_CATEGORIES]  # type: ignore[valid-type]
    hit_date: PastDate


class Biometrics(Section):
    record_ref: ShortText | None = None
    eurodac_hits: list[EurodacHit] = Field(default_factory=list, max_length=10)
    refused: bool = False


class PreviousApplication(Section):
    member_state: Country
    decision: Literal[DECISIONS] = "unknown"  # type: ignore[valid-type]
    final: bool = False
    new_elements: bool = False


class ReturnDecision(Section):
    received_on: PastDate
    informed_of_consequences: bool = False


class FirstCountryOfAsylum(Section):
    country: Country
    effective_protection_still_available: bool = False
    readmission_possible: bool = False
    guarantee_for_uam: bool = False


class SafeThirdCountry(Section):
    country: Country
    basis: Literal[STB_BASES]  # type: ignore[valid-type]
    assessed_safe_for_applicant: bool = False
    effective_protection_possible: bool = False
    readmission_possible: bool = False


class History(Section):
    previous_applications: list[PreviousApplication] = Field(default_factory=list, max_length=10)
    return_decision: ReturnDecision | None = None
    protection_granted_by: Country | None = None
    first_country_of_asylum: FirstCountryOfAsylum | None = None
    safe_third_country: SafeThirdCountry | None = None


class FamilyMemberElsewhere(Section):
    relationship: Literal[RELATIONSHIPS]  # type: ignore[valid-type]
    family_name: Name = ""
    given_names: Name = ""
    date_of_birth: PastDate | None = None
    member_state: Country
    legally_present: bool = False
    reunification_in_best_interests: bool = False


class Family(Section):
    unaccompanied_minor: bool = False
    age_disputed: bool = False
    representative_name: Name | None = None
    representative_appointed_on: PastDate | None = None
    members_elsewhere: list[FamilyMemberElsewhere] = Field(default_factory=list, max_length=20)


class AdequateSupport(Section):
    border_location: bool = True
    accelerated_procedure: bool = True


class SpecialNeeds(Section):
    vulnerabilities: list[Literal[VULNERABILITY_CODES]] = Field(default_factory=list)  # type: ignore[valid-type]
    special_procedural_guarantees_needed: bool = False
    adequate_support: AdequateSupport = Field(default_factory=AdequateSupport)
    notes: LongText | None = None


class Claim(Section):
    grounds: list[Literal[CLAIM_GROUNDS]] = Field(default_factory=list)  # type: ignore[valid-type]
    statement: LongText | None = None


class Security(Section):
    flag: bool = False
    basis: LongText | None = None

    @model_validator(mode="after")
    def basis_when_flagged(self):
        if self.flag and not self.basis:
            raise ValueError(N_("a security flag needs its basis"))
        return self


class PersonInput(Section):
    principal: bool = False
    relationship: Literal[RELATIONSHIPS] | None = None  # type: ignore[valid-type]
    identity: Identity
    birth: Birth
    nationality: Nationality
    language: LanguageSection = Field(default_factory=LanguageSection)
    contact: Contact = Field(default_factory=Contact)
    documents: list[Document] = Field(default_factory=list, max_length=10)
    biometrics: Biometrics = Field(default_factory=Biometrics)
    history: History = Field(default_factory=History)
    family: Family = Field(default_factory=Family)
    special_needs: SpecialNeeds = Field(default_factory=SpecialNeeds)
    claim: Claim = Field(default_factory=Claim)
    security: Security = Field(default_factory=Security)

    @model_validator(mode="after")
    def dependant_has_relationship(self):
        if not self.principal and not self.relationship:
            raise ValueError(N_("give the dependant's relationship to the principal applicant"))
        return self


class RegistrationInput(Section):
    """A whole claim as registered: case data plus a principal applicant and dependants."""

    made_on: PastDate
    made_place: ShortText | None = None
    registered_on: PastDate
    lodged_on: PastDate | None = None
    good_cause_for_not_lodging: bool = False
    arrival: Arrival = Field(default_factory=Arrival)
    persons: list[PersonInput] = Field(min_length=1, max_length=30)

    # Field validators (not model validators) so each message lands next to its field, and they
    # run alongside the other field checks instead of only after all of them pass.
    @field_validator("registered_on")
    @classmethod
    def registered_after_made(cls, value: date, info: ValidationInfo) -> date:
        made_on = info.data.get("made_on")
        if made_on and value < made_on:
            raise ValueError(N_("the claim cannot be registered before it was made"))
        return value

    @field_validator("lodged_on")
    @classmethod
    def lodged_after_registered(cls, value: date | None, info: ValidationInfo) -> date | None:
        registered_on = info.data.get("registered_on")
        if value and registered_on and value < registered_on:
            raise ValueError(N_("the claim cannot be lodged before it was registered"))
        return value

    @field_validator("persons")
    @classmethod
    def one_principal_and_real_minors(cls, persons: list[PersonInput], info: ValidationInfo) -> list[PersonInput]:
        # Collected, and each minor's error located at that person's field (persons.N.family.
        # unaccompanied_minor), so the form shows it next to the box that was ticked.
        problems = []
        if sum(1 for p in persons if p.principal) != 1:
            problems.append(((), N_("mark exactly one person as the principal applicant")))
        made_on = info.data.get("made_on")
        for position, person in enumerate(persons):
            birth = person.birth.date_of_birth
            if made_on and birth and person.family.unaccompanied_minor and not person.family.age_disputed \
                    and age_on(birth, made_on) >= 18:
                problems.append(((position, "family", "unaccompanied_minor"),
                                 N_("an unaccompanied minor must be under 18 on the day the claim was made "
                                    "(or the age must be marked as disputed)")))
        if problems:
            raise ValidationError.from_exception_data("persons", [
                InitErrorDetails(type=PydanticCustomError("value_error", message), loc=loc, input=None)
                for loc, message in problems])
        return persons

    @property
    def principal(self) -> PersonInput:
        return next(p for p in self.persons if p.principal)


def age_on(birth: date, day: date) -> int:
    """Completed years on ``day``; someone whose 18th birthday is ``day`` is 18 (an adult)."""
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def parse_registration(data: dict) -> RegistrationInput:
    """Parse and validate. Raises pydantic.ValidationError with every failure located."""
    return RegistrationInput.model_validate(data)


GENERIC_MESSAGES = {
    "missing": N_("This field is required."),
    "date_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_from_datetime_parsing": N_("Enter a date as YYYY-MM-DD."),
    "date_type": N_("Enter a date as YYYY-MM-DD."),
    "literal_error": N_("Choose one of the listed options."),
    "enum": N_("Choose one of the listed options."),
    "string_too_long": N_("This is too long."),
    "too_long": N_("Too many entries."),
    "too_short": N_("At least one entry is needed."),
    "string_pattern_mismatch": N_("Enter a phone number: digits, spaces and + ( ) - . / only."),
    "bool_parsing": N_("Answer yes or no."),
    "bool_type": N_("Answer yes or no."),
    "string_type": N_("Enter text."),
    "list_type": N_("Enter a list."),
    "model_type": N_("This section is malformed."),
    "dict_type": N_("This section is malformed."),
    "extra_forbidden": N_("Unknown field."),
}


def error_messages(error: ValidationError, translate=lambda text: text) -> dict[str, list[str]]:
    """Pydantic errors as ``{"persons.0.birth.date_of_birth": ["..."]}``: a dotted path per field
    (the form maps it onto its fields; the import prints it with the line number). Messages are
    ours (``translate`` turns them into the user's language), never pydantic's wording."""
    messages: dict[str, list[str]] = {}
    for item in error.errors(include_url=False, include_input=False):
        path = ".".join(str(part) for part in item["loc"] if not str(part).startswith("function-"))
        if item["type"] == "value_error":
            text = item["msg"].removeprefix("Value error, ")
            if "email address" in text:
                text = N_("Enter a valid email address.")
        else:
            text = GENERIC_MESSAGES.get(item["type"], N_("This value is not valid."))
        text = translate(text)
        messages.setdefault(path or "__all__", []).append(text[:1].upper() + text[1:])
    return messages


__all__ = ["RegistrationInput", "PersonInput", "parse_registration", "error_messages", "ValidationError",
           "age_on", "LATE_REGISTRATION_DAYS", "VULNERABILITY_CODES", "CLAIM_GROUNDS", "LOCATION_CONTEXTS"]
