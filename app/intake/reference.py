"""Reference lists for registration: countries (ISO 3166-1 alpha-3) and languages (ISO 639-3),
from pycountry, with names in the user's language. Never free text.

Kosovo has no ISO 3166 code; the EU (and Eurostat) use the user-assigned ``XKX``, so it is added.
Languages: every ISO 639 language with a two-letter code, plus the ISO 639-3 languages that
asylum interviews need and that have none (Dari, Kurdish varieties, Arabic varieties, ...).
"""

from __future__ import annotations

import gettext
from functools import lru_cache

import pycountry

EXTRA_COUNTRIES = {"XKX": "Kosovo"}
EXTRA_LANGUAGES = ("prs", "kmr", "ckb", "sdh", "apc", "arz", "ary", "acm", "ajp", "aeb", "haz", "bal",
                   "brh", "skr", "tig", "byn", "rom", "fuf", "mnk", "kri", "pcm", "lug", "ber", "kab")


@lru_cache(maxsize=1)
def country_codes() -> frozenset[str]:
    return frozenset(c.alpha_3 for c in pycountry.countries) | frozenset(EXTRA_COUNTRIES)


@lru_cache(maxsize=1)
def language_codes() -> frozenset[str]:
    codes = {lang.alpha_3 for lang in pycountry.languages if hasattr(lang, "alpha_2")}
    codes.update(code for code in EXTRA_LANGUAGES if pycountry.languages.get(alpha_3=code))
    return frozenset(codes)


def _translator(domain: str, locale: str):
    try:
        return gettext.translation(domain, pycountry.LOCALES_DIR, languages=[locale]).gettext
    except OSError:
        return lambda text: text


@lru_cache(maxsize=8)
def country_choices(locale: str = "en") -> tuple[tuple[str, str], ...]:
    """(alpha-3, name in ``locale``) sorted by name."""
    translate = _translator("iso3166-1", locale)
    names = {c.alpha_3: translate(c.name) for c in pycountry.countries}
    names.update(EXTRA_COUNTRIES)
    return tuple(sorted(names.items(), key=lambda item: item[1].casefold()))


@lru_cache(maxsize=8)
def language_choices(locale: str = "en") -> tuple[tuple[str, str], ...]:
    """(ISO 639-3, name in ``locale``) sorted by name."""
    translate = _translator("iso639-3", locale)
    names = {code: translate(pycountry.languages.get(alpha_3=code).name) for code in language_codes()}
    return tuple(sorted(names.items(), key=lambda item: item[1].casefold()))


def country_name(code: str | None, locale: str = "en") -> str:
    if not code:
        return ""
    return dict(country_choices(locale)).get(code, code)


def language_name(code: str | None, locale: str = "en") -> str:
    if not code:
        return ""
    return dict(language_choices(locale)).get(code, code)
