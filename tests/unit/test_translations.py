"""Message catalogues (app/translations): French complete, every catalogue compiles, placeholders
survive translation, and the shell (sign-in, navigation, errors) exists in Spanish and Arabic.
Reads the .po files directly and compiles them in memory: no Flask app, no .mo files needed."""

from __future__ import annotations

import gettext
import io
import re
from collections import Counter
from pathlib import Path

import pytest
from babel.messages.catalog import Catalog, Message
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "app" / "translations"
LANGUAGES = ("fr", "es", "ar")

# A Python %-placeholder: %(name)s, %d, %5.1f ... and the %% escape (group "escape").
PLACEHOLDER = re.compile(r"%(?P<escape>%)|%(?:\((?P<name>[^)]*)\))?[#0 +-]*(?:\*|\d+)?(?:\.(?:\*|\d+))?"
                         r"(?P<type>[diouxXeEfFgGcrsa])")
ARABIC_LETTER = re.compile(r"[\u0600-\u06FF]")

# The shell every user meets, whatever their role: sign-in and second factor, account, language
# chooser, navigation and role names, home pages, error pages, sign-in/out flash messages.
SHELL_MSGIDS = (
    "Sign in", "Username", "Password", "Sign out", "Second factor", "Verify",
    "Enter the six-digit code from your authenticator app. If you lost your phone, enter one of "
    "your recovery codes.",
    "Set up a second factor", "Your recovery codes", "My account", "Change password", "Language",
    "Change", "Home", "Skip to main content", "Register a claim", "Queues", "My cases", "Deadlines",
    "Audit trail", "Registration officer", "Caseworker", "Administrator",
    "Bad request", "Access denied", "Not found", "The page you asked for does not exist, or you may not see it.",
    "Too many attempts. Wait a minute and try again.", "Something went wrong",
    "Go to the home page", "Please sign in again.", "You are signed out.",
    "Your password was changed. Every session was signed out: please sign in again.",
)


def load(language: str) -> Catalog:
    with (TRANSLATIONS / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        return read_po(po, locale=language)


def forms(message: Message) -> tuple[str, ...]:
    return message.string if isinstance(message.string, tuple) else (message.string,)


def is_translated(message: Message) -> bool:
    return all(form.strip() for form in forms(message)) and "fuzzy" not in message.flags


def placeholders(text: str) -> tuple[frozenset[str], Counter, int]:
    """Named placeholders, positional conversion types, and the number of %% escapes."""
    named, positional, escapes = set(), Counter(), 0
    for match in PLACEHOLDER.finditer(text):
        if match["escape"]:
            escapes += 1
        elif match["name"] is not None:
            named.add(match["name"])
        else:
            positional[match["type"]] += 1
    return frozenset(named), positional, escapes


def messages(catalog: Catalog) -> list[Message]:
    return [m for m in catalog if m.id]


@pytest.fixture(scope="module", params=LANGUAGES)
def catalog(request) -> Catalog:
    return load(request.param)


def test_french_catalogue_is_complete():
    """Every French message has a non-empty, non-fuzzy translation (every plural form too)."""
    french = load("fr")
    untranslated = [m.id for m in messages(french) if not is_translated(m)]
    assert len(messages(french)) > 0
    assert untranslated == []
    assert french.fuzzy is False


def test_every_catalogue_compiles(catalog):
    """Each catalogue passes Babel's checks and compiles to a .mo that gettext reads back."""
    problems = [(m.id, str(error)) for m, errors in catalog.check() for error in errors]
    assert problems == []
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    compiled = gettext.GNUTranslations(buffer)
    translated = next(m for m in messages(catalog) if m.id == "Sign in")
    assert compiled.gettext("Sign in") == translated.string
    assert compiled.gettext("Sign in") != "Sign in"


def test_placeholders_survive_translation(catalog):
    """Each translated form keeps exactly the msgid's %(name)s / %d placeholders and, where the
    text is %-formatted (python-format, or any template: Jinja's gettext always formats), its %%
    escapes, with no stray % that would break formatting."""
    wrong = []
    for message in messages(catalog):
        source = message.id[1] if isinstance(message.id, tuple) else message.id
        python_format = ("python-format" in message.flags
                         or any(path.endswith(".html") for path, _line in message.locations))
        expected = placeholders(source)
        for form in forms(message):
            if not form:
                continue
            found = placeholders(form)
            if found[:2] != expected[:2]:
                wrong.append((source, form))
            elif python_format and (found[2] != expected[2] or PLACEHOLDER.sub("", form).count("%")):
                wrong.append((source, form))
    assert wrong == []


def test_plural_entries_have_one_form_per_plural_category(catalog):
    """Plural messages carry as many forms as the language's Plural-Forms header declares."""
    plural_messages = [m for m in messages(catalog) if isinstance(m.id, tuple)]
    assert plural_messages
    assert {len(forms(m)) for m in plural_messages} == {catalog.num_plurals}
    assert catalog.num_plurals == {"fr": 2, "es": 2, "ar": 6}[str(catalog.locale)]


@pytest.mark.parametrize("language", ["es", "ar"])
def test_shell_is_translated_in_spanish_and_arabic(language):
    """The sign-in, navigation and error-page messages exist and are translated in es and ar
    (Arabic in Arabic script)."""
    by_id = {m.id: m for m in messages(load(language))}
    missing = [msgid for msgid in SHELL_MSGIDS if msgid not in by_id]
    assert missing == []
    untranslated = [msgid for msgid in SHELL_MSGIDS if not is_translated(by_id[msgid])]
    assert untranslated == []
    if language == "ar":
        not_arabic = [msgid for msgid in SHELL_MSGIDS if not ARABIC_LETTER.search(by_id[msgid].string)]
        assert not_arabic == []
    else:
        left_in_english = [msgid for msgid in SHELL_MSGIDS if by_id[msgid].string == msgid]
        assert left_in_english == []


def test_product_name_is_never_translated():
    """The product name Nansen stays as written in every language."""
    for language in LANGUAGES:
        footer = next(m for m in messages(load(language)) if m.id == "Nansen asylum case management")
        assert "Nansen" in footer.string
