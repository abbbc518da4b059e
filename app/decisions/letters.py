"""Decision letters: one Jinja template per language under templates/letters/ (named by ISO 639-3
code, so legal staff review each language's wording in one file), rendered to PDF by WeasyPrint.

The letter environment is separate from Flask's: letters need no request, cannot shadow or be
shadowed by page templates, and autoescape everything (reasons are free text). WeasyPrint gets a
URL fetcher that allows no protocol at all, so a letter never loads anything from outside.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path

from babel.dates import format_date
from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

LETTER_DIRECTORY = Path(__file__).resolve().parent / "templates" / "letters"
# ISO 639-3 code of a supported letter language -> Babel locale used for dates.
LETTER_LANGUAGES: dict[str, str] = {"eng": "en", "fra": "fr", "spa": "es", "ara": "ar"}
RIGHT_TO_LEFT = frozenset({"ara"})
FALLBACK_LANGUAGE = "eng"


def letter_language(preferred: str | None) -> str:
    """The letter language for an applicant's preferred language (ISO 639-3), English otherwise."""
    code = (preferred or "").strip().lower()
    return code if code in LETTER_LANGUAGES else FALLBACK_LANGUAGE


@dataclass(frozen=True)
class LetterContent:
    """Everything a letter says; the template chooses the words."""

    name: str
    original_script_name: str | None
    reference: str
    office_name: str
    issued_on: date
    outcome: str
    legal_basis: tuple[str, ...]
    reasons: str | None
    appeal_days: int | None
    appeal_months: int | None
    service_date: date
    appeal_deadline: date
    suspensive: str
    corrects_issued_on: date | None = None


def _environment(language: str) -> Environment:
    env = Environment(loader=FileSystemLoader(str(LETTER_DIRECTORY)), autoescape=select_autoescape(["html"]),
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    locale = LETTER_LANGUAGES[language]
    env.filters["longdate"] = lambda value: format_date(value, "long", locale=locale)
    env.filters["iso"] = lambda value: value.isoformat()
    return env


def render_html(language: str, content: LetterContent) -> str:
    """The letter as HTML in ``language`` (a key of LETTER_LANGUAGES)."""
    if language not in LETTER_LANGUAGES:
        raise ValueError(f"no letter template for {language!r}")
    return _environment(language).get_template(f"{language}.html").render(**asdict(content))


def render_pdf(language: str, content: LetterContent) -> bytes:
    """The letter as PDF bytes."""
    from weasyprint import HTML, URLFetcher  # heavy: loaded when a letter is first made

    fetcher = URLFetcher(allowed_protocols=frozenset())
    return HTML(string=render_html(language, content), url_fetcher=fetcher).write_pdf()
