"""Duplicate detection for registration: match keys, pairwise scores and ranking.

Pure: the standard library, ``anyascii`` (any script to ASCII) and ``rapidfuzz`` (string
similarity) only. No Flask, no SQLAlchemy, no application code: the intake service feeds it
plaintext identities and does the storing, the blind indexing and the decrypting itself.

The flow it serves (docs/duplicate-detection.md has the measurements and the reasons):

1. ``match_keys(identity)`` turns one person's identity into a few short normalised strings. The
   service stores a blind index (HMAC) of each; candidates are the people sharing at least one.
   Keys are built for recall across transliterations, scripts, name order and uncertain dates of
   birth, yet never from a name skeleton alone (that would match thousands): every key joins two
   name skeletons with a birth year (and perhaps the nationality), or one name skeleton with a
   full date of birth and the nationality.
2. ``score(probe, candidate)`` compares two decrypted identities: token-based fuzzy similarity of
   the transliterated names, date-of-birth compatibility honouring precision and estimation, and
   nationality. ``rank_candidates`` sorts a handful of candidates with it;
   ``could_be_likely_duplicate`` rules a candidate out from its date of birth and nationality
   alone, before its names are decrypted and compared (the costly part).

How a name is normalised, one token at a time (``name_skeleton`` shows the result):
  script   Arabic-script words lose vowel marks, tatweel and a leading article (ال), and each letter
           becomes one Latin consonant class (``_ABJAD_LETTERS``; Persian-marked text, with پ چ ژ گ
           ک ی, reads ذ ض ظ as z); Ukrainian-marked Cyrillic (і ї є ґ) reads г as h. anyascii
           transliterates every other script (Cyrillic, Ge'ez, Latin diacritics) to ASCII.
  tokens   "G/" and "W/" (Eritrean abbreviations) become Gebre and Wolde; Md/Mhd/Mohd become
           Muhammad; apostrophes (ayn, hamza, Ge'ez ejectives) vanish; the article al/el and an
           assimilated one (ar-Rahman, as-Salam) is dropped; compound parts join their neighbour:
           prefixes (Abd/Abdel/Abdul, Abu, bin/ben/ibn, Gebre, Wolde, Habte, Tesfa) and suffixes
           (-din/-eddine, -allah/-ullah), so "Abd al-Rahman" and "Abdelrahman" are one token.
  phonetic Latin digraphs fold (``_DIGRAPHS``: sh/ch/sch -> x, kh/q/c -> k, th -> s, dh -> d,
           zh/dj -> j, ph -> f, x -> ks), initial j, and i/y before a vowel, are y, initial w is v;
           inside a word w and v are semivowels; each vowel run becomes a class: I (has i/y/ee),
           U (has o/u/w/v), E (only e: fatha or kasra, so read both ways when comparing) or A;
           doubled letters collapse and a final t reads as d (Ahmet, Mehmet).
  skeleton the phonetic form without vowel classes, a final h dropped (ta marbuta), Abdel-/Abdul-
           read as Abd-, -eldin as -din. A vowel-only name is "0".

Arabic script writes no short vowels, so a token that came from it is compared by skeleton only;
Latin, Cyrillic and Ge'ez tokens keep their vowel classes and are compared on those.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from datetime import date
from itertools import combinations, permutations, product

from anyascii import anyascii
from rapidfuzz.distance import Indel

__all__ = [
    "DOB_PRECISIONS", "ESTIMATED_YEAR_TOLERANCE", "KEY_VERSION", "LIKELY_DUPLICATE_THRESHOLD",
    "REASON_CODES", "Identity", "MatchResult", "could_be_likely_duplicate", "match_keys", "name_skeleton",
    "rank_candidates", "score",
]

# Bump when the key recipe changes: stored keys must then be recomputed for every person.
KEY_VERSION = "m1"
DOB_PRECISIONS = ("day", "month", "year")
ESTIMATED_YEAR_TOLERANCE = 2
# score = name similarity x date-of-birth factor x nationality factor; at or above: likely duplicate.
LIKELY_DUPLICATE_THRESHOLD = 0.80
REASON_CODES = (
    "name_exact", "name_similar", "name_different", "names_swapped", "alias_match", "script_match",
    "dob_exact", "dob_compatible", "dob_transposed", "dob_close", "dob_unknown", "dob_conflict",
    "nationality_same", "nationality_different", "nationality_unknown",
)

# Factors of the score (see docs/duplicate-detection.md for how they were chosen).
_NAME_SIMILAR = 0.75           # name similarity from which the reason is "name_similar"
_TOKEN_POWER = 2               # a token pair's similarity is squared: near misses count less
_EXTRA_TOKEN_WEIGHT = 0.25     # an unmatched token (father's, grandfather's name) costs a quarter
_FEMININE_PAIR = 0.5           # a name and its feminine in -a are different names
_DOB_FACTOR = {"dob_exact": 1.0, "dob_compatible": 0.95, "dob_transposed": 0.9, "dob_unknown": 0.85,
               "dob_close": 0.8, "dob_conflict": 0.4}
_NATIONALITY_FACTOR = {"nationality_same": 1.0, "nationality_unknown": 0.95, "nationality_different": 0.75}
_UNKNOWN_NATIONALITIES = frozenset({"XXX"})  # ICAO 9303 "unspecified"

# Keys with the nationality span the birth years within one year either side (a mistyped year),
# or within the estimate's tolerance.
_NATIONALITY_YEAR_WINDOW = 1
# Without any date of birth, the nationality keys cover every year a living applicant may be born in.
# Widening this range changes the keys: bump KEY_VERSION.
_ANY_BIRTH_YEAR = tuple(range(1920, 2036))


@dataclass(frozen=True, repr=False)
class Identity:
    """The plaintext identity fields duplicate detection uses, for one person.

    ``date_of_birth`` is a ``date`` whose finer parts are ignored below ``dob_precision``
    ("day", "month" or "year"); ``dob_estimated`` says the year itself is a guess (within
    ``ESTIMATED_YEAR_TOLERANCE`` years). ``nationality`` is an ISO 3166 alpha-3 code or None.
    ``aliases`` are other full names the person is known by; ``original_script_name`` is the full
    name as written in its own script. The repr shows no personal data."""

    family_name: str
    given_names: str
    aliases: tuple[str, ...] = ()
    original_script_name: str | None = None
    date_of_birth: date | None = None
    dob_precision: str = "day"
    dob_estimated: bool = False
    nationality: str | None = None

    def __post_init__(self) -> None:
        if self.dob_precision not in DOB_PRECISIONS:
            raise ValueError(f"dob_precision must be one of {DOB_PRECISIONS}")
        if self.date_of_birth is not None and not isinstance(self.date_of_birth, date):
            raise TypeError("date_of_birth must be a datetime.date or None")
        if isinstance(self.aliases, str):
            raise TypeError("aliases must be a sequence of names, not one string")
        object.__setattr__(self, "aliases", tuple(a for a in self.aliases if a and a.strip()))
        nationality = (self.nationality or "").strip().upper() or None
        if nationality is not None and not re.fullmatch(r"[A-Z]{3}", nationality):
            raise ValueError("nationality must be an ISO 3166 alpha-3 code")
        object.__setattr__(self, "nationality", nationality)

    def __repr__(self) -> str:
        return f"Identity(<redacted>, dob_precision={self.dob_precision!r}, dob_estimated={self.dob_estimated})"


@dataclass
class MatchResult:
    """How alike two identities are: ``score`` in 0..1, whether it reaches
    ``LIKELY_DUPLICATE_THRESHOLD``, and the short codes (``REASON_CODES``) that explain it."""

    score: float
    is_likely_duplicate: bool
    reasons: list[str] = field(default_factory=list)


# --- Normalisation ---------------------------------------------------------------------------

_ABJAD = re.compile("[\u0590-\u05ff\u0600-\u06ff\u0750-\u077f\u08a0-\u08ff\ufb50-\ufdff\ufe70-\ufeff]")
_ARABIC_MARKS = re.compile("[\u0610-\u061a\u0640\u064b-\u065f\u0670\u06d6-\u06ed]")  # harakat, tatweel
_PERSIAN_LETTERS = frozenset("پچژگکیۀ")
# Arabic-script letters to one Latin consonant class each (a digraph such as "sh" would be ambiguous
# once the short vowels are missing: ز+ه is not ژ). Alif, hamza and ayn carry no consonant; waw and
# ya are semivowels, read as vowels inside a word like their Latin w and y. Pashto and Urdu letters
# fold into their nearest Arabic or Persian class.
_ABJAD_LETTERS = {
    "ا": "", "أ": "", "إ": "", "آ": "", "ٱ": "", "ء": "", "ئ": "", "ؤ": "", "ع": "", "ى": "",
    "ب": "b", "پ": "p", "ت": "t", "ط": "t", "ث": "s", "س": "s", "ص": "s", "ج": "j", "ژ": "j", "ږ": "j",
    "چ": "x", "ش": "x", "ښ": "x", "ح": "h", "ه": "h", "ة": "h", "ۀ": "h", "ھ": "h", "خ": "k", "ق": "k",
    "ك": "k", "ک": "k", "د": "d", "ذ": "d", "ض": "d", "ظ": "d", "ډ": "d", "ڈ": "d", "ر": "r", "ړ": "r",
    "ڑ": "r", "ڕ": "r", "ز": "z", "ځ": "z", "څ": "s", "غ": "g", "گ": "g", "ګ": "g", "ف": "f", "ڤ": "v",
    "ل": "l", "ڵ": "l", "م": "m", "ن": "n", "ڼ": "n", "ں": "n", "و": "w", "ۆ": "w", "ي": "y", "ی": "y",
    "ې": "y", "ۍ": "y", "ے": "y", "ێ": "y", "ە": "", "ټ": "t", "ٹ": "t",
}
# Persian and Dari (and Pashto) read these Arabic letters as z, as their Latin spellings show.
_PERSIAN_OVERRIDES = {"ذ": "z", "ض": "z", "ظ": "z"}
_UKRAINIAN_LETTERS = frozenset("іїєґІЇЄҐ")
_UKRAINIAN_VALUES = str.maketrans({"г": "h", "Г": "H"})  # Ukrainian national transliteration (2010)
_JOINERS = re.compile("[\u200b-\u200d\u2060\ufeff]")  # ZWNJ joins Persian compounds: keep them joined
_APOSTROPHES = re.compile(r"['`\u02bb\u02bc\u02be\u02bf\u2018\u2019]")
_SLASH_ABBREVIATIONS = ((re.compile(r"\bg\s*/\s*"), "gebre "), (re.compile(r"\bw\s*/\s*"), "wolde "))
_ABBREVIATIONS = {"md": "muhammad", "mhd": "muhammad", "mohd": "muhammad", "muhd": "muhammad"}
_ARTICLES = frozenset({"al", "el", "ul", "il", "ol"})
_SUN_ARTICLES = frozenset({"ad", "an", "ar", "as", "ash", "at", "az", "ed", "en", "er", "es", "esh", "et", "ez",
                           "ud", "un", "ur", "us", "ush", "ut", "uz"})
# Parts that join the next token: Abd/Abdel/Abdul/Abdur..., Abu, bin/ben/ibn/bint/ould, and the
# Ge'ez compound heads (Gebre-, Wolde-, Habte-, Tesfa-).
_PREFIX = re.compile(r"a?bd(?:[aeiou]{1,2}[lrsdtzn])?|ab[ou]u?|a?bw|bint?|ben|ibn|ould"
                     r"|gh?ebr[ea]|w[eo]lde|habte|tesfa")
# Parts that join the previous token: -din/-eddine/-uddin, -allah/-ullah.
_SUFFIX = re.compile(r"[aeiu]?[dl]?d(?:i|ee|y)ne?|[aeiou]?llah?|[aeiou]?lah|llh")
# Ordered: longer patterns first. "x" is read "ks" before "sh"/"ch" become "x".
_DIGRAPHS = (("chael", "kael"), ("x", "ks"), ("tsch", "x"), ("sch", "x"), ("tch", "x"), ("sh", "x"),
             ("ch", "x"), ("zh", "j"), ("dj", "j"), ("kh", "k"), ("gh", "g"), ("th", "s"), ("dh", "d"),
             ("ph", "f"), ("ck", "k"), ("q", "k"))
_SOFT_C = re.compile(r"c(?=[eiy])")
_VOWEL_RUN = re.compile(r"[aeiouywv]+")  # medial w and v are semivowels
_VOWEL_CLASSES = re.compile(r"[AEIU]")
_REPEATS = re.compile(r"(.)\1+")


@dataclass(frozen=True, slots=True)  # slots: a cached name keeps ~80 bytes less per token
class _Token:
    text: str         # transliterated ASCII, lower case, compound parts joined
    phonetic: str     # consonant classes with vowel classes A/E/I/U
    skeleton: str     # consonant classes only
    abjad: bool       # came from a script that writes no short vowels
    readings: tuple[str, ...]  # the phonetic form with each E read as A or I


@dataclass(frozen=True)
class _Reading:
    """One way to read a person's name: the primary name, an alias or the original-script name."""

    tokens: tuple[_Token, ...]
    source: str                      # "primary", "alias" or "script"
    given: tuple[_Token, ...] = ()
    family: tuple[_Token, ...] = ()


def _prepare_script(word: str) -> str:
    if _ABJAD.search(word):
        word = _ARABIC_MARKS.sub("", word)
        if word.startswith("ال") and len(word) > 3 and word != "الله":
            word = word[2:]
    return word


def _abjad_to_ascii(word: str, persian: bool) -> str:
    out = []
    for ch in word:
        if persian and ch in _PERSIAN_OVERRIDES:
            out.append(_PERSIAN_OVERRIDES[ch])
        elif ch in _ABJAD_LETTERS:
            out.append(_ABJAD_LETTERS[ch])
        else:  # Hebrew, Syriac, rarer letters: anyascii's reading
            out.append(anyascii(ch).lower())
    return "".join(out)


def _ascii_words(text: str) -> list[tuple[str, bool]]:
    """(ascii token, came from abjad) for each token of ``text``, in order."""
    text = _JOINERS.sub("", unicodedata.normalize("NFKC", text))
    persian = any(ch in _PERSIAN_LETTERS for ch in text)
    if any(ch in _UKRAINIAN_LETTERS for ch in text):
        text = text.translate(_UKRAINIAN_VALUES)
    out: list[tuple[str, bool]] = []
    for word in text.split():
        abjad = bool(_ABJAD.search(word))
        if abjad:
            ascii_word = _abjad_to_ascii(_prepare_script(word), persian)
        else:
            ascii_word = anyascii(word).lower()
            for pattern, replacement in _SLASH_ABBREVIATIONS:
                ascii_word = pattern.sub(replacement, ascii_word)
        ascii_word = _APOSTROPHES.sub("", ascii_word)
        out.extend((part, abjad) for part in re.split(r"[^a-z]+", ascii_word) if part)
    return out


def _join_compounds(words: list[tuple[str, bool]]) -> list[tuple[str, bool]]:
    words = [(_ABBREVIATIONS.get(w, w), abjad) for w, abjad in words]
    kept: list[tuple[str, bool]] = []
    for i, (word, abjad) in enumerate(words):
        following = words[i + 1][0] if i + 1 < len(words) else None
        if following is not None and (word in _ARTICLES or (
                word in _SUN_ARTICLES and following.startswith(word[1:]))):
            continue
        kept.append((word, abjad))
    joined: list[tuple[str, bool]] = []
    pending: tuple[str, bool] | None = None
    for word, abjad in kept:
        if pending is not None:
            word, abjad = pending[0] + word, pending[1] or abjad
            pending = None
        elif joined and _SUFFIX.fullmatch(word):
            previous, previous_abjad = joined.pop()
            word, abjad = previous + word, previous_abjad or abjad
        if _PREFIX.fullmatch(word):
            pending = (word, abjad)
            continue
        joined.append((word, abjad))
    if pending is not None:
        joined.append(pending)
    return joined


def _vowel_class(match: re.Match) -> str:
    run = match.group(0)
    if "i" in run or "y" in run or "ee" in run:
        return "I"
    if "o" in run or "u" in run or "w" in run or "v" in run:
        return "U"
    return "E" if set(run) == {"e"} else "A"


def _phonetic(text: str, abjad: bool = False) -> str:
    s = text
    if not abjad:  # abjad letters are already one consonant class each
        if len(s) > 1 and s[0] in "iy" and s[1] in "aeiou":
            s = "y" + s[1:]
        for old, new in _DIGRAPHS:
            s = s.replace(old, new)
        s = _SOFT_C.sub("s", s).replace("c", "k")
    if s.startswith("j"):
        s = "y" + s[1:]
    elif s.startswith("w"):
        s = "v" + s[1:]
    head, rest = (s[0], s[1:]) if s[:1] in ("y", "v") else ("", s)
    s = _REPEATS.sub(r"\1", head + _VOWEL_RUN.sub(_vowel_class, rest))
    if len(s) > 1 and s.endswith("t"):
        s = s[:-1] + "d"
    return s


def _vowel_readings(phonetic: str) -> tuple[str, ...]:
    """A lone Latin e writes fatha (Mohammed, Ahmed) as often as kasra (Hamed, Saleh): read each
    E both as A and as I (all of them at once beyond three)."""
    count = phonetic.count("E")
    if not count:
        return (phonetic,)
    if count > 3:
        return (phonetic.replace("E", "A"), phonetic.replace("E", "I"))
    parts = phonetic.split("E")
    return tuple(sorted({parts[0] + "".join(vowel + part for vowel, part in zip(choice, parts[1:], strict=True))
                         for choice in product("AI", repeat=count)}))


def _skeleton_of(phonetic: str) -> str:
    s = _VOWEL_CLASSES.sub("", phonetic)
    if len(s) > 1 and s.endswith("h"):
        s = s[:-1]
    if len(s) > 1 and s.endswith("t"):
        s = s[:-1] + "d"
    if s.startswith("bdl"):
        s = "bd" + s[3:]
    if len(s) > 3 and s.endswith("ldn"):
        s = s[:-3] + "dn"
    return s or "0"


# Names repeat a great deal across a caseload (and a bulk import), and a name's tokens depend on
# nothing else: normalising each distinct name once saves most of the work of match keys and
# scoring; tokens are immutable. Bounded by TOKEN_CACHE_SIZE: an entry keeps about 700 bytes,
# and a long-running web worker meets ever new names (every duplicate check tokenises the
# candidates' names), so 50,000 entries grew a worker by up to ~35 MB over hours. The common
# names, which make the hits, fit in a few thousand entries (~3 MB). A bulk run that wants more
# (app.demo_data) wraps the function in its own, larger cache for its duration.
TOKEN_CACHE_SIZE = 4096


@lru_cache(maxsize=TOKEN_CACHE_SIZE)
def _tokens(text: str | None) -> tuple[_Token, ...]:
    if not text:
        return ()
    tokens = []
    for word, abjad in _join_compounds(_ascii_words(text)):
        phonetic = _phonetic(word, abjad)
        tokens.append(_Token(word, phonetic, _skeleton_of(phonetic), abjad, _vowel_readings(phonetic)))
    return tuple(tokens)


def _variant_text(text: str) -> str:
    """The same name with hyphenated parts joined and a joined Latin article (Alhassan) cut off."""
    words = []
    for word in text.replace("-", "").split():
        lowered = word.lower()
        if not _ABJAD.search(word) and lowered[:2] in ("al", "el") and len(lowered) >= 6:
            word = word[2:]
        words.append(word)
    return " ".join(words)


def _readings(identity: Identity) -> list[_Reading]:
    readings: list[_Reading] = []
    seen: set[tuple[str, ...]] = set()

    def add(reading: _Reading) -> None:
        signature = tuple(sorted(t.text for t in reading.tokens))
        if reading.tokens and signature not in seen:
            seen.add(signature)
            readings.append(reading)

    for transform in (lambda s: s, _variant_text):
        given = _tokens(transform(identity.given_names or ""))
        family = _tokens(transform(identity.family_name or ""))
        add(_Reading(given + family, "primary", given, family))
    for alias in identity.aliases:
        add(_Reading(_tokens(alias), "alias"))
        add(_Reading(_tokens(_variant_text(alias)), "alias"))
    if identity.original_script_name:
        add(_Reading(_tokens(identity.original_script_name), "script"))
    return readings


def name_skeleton(name: str) -> str:
    """The phonetic consonant skeleton of ``name``: one space-separated skeleton per token.

    Any script is transliterated to Latin first; compound parts (Abd al-, Abu, -eddine, Gebre-)
    join their neighbour, so variants agree: "Mohammed", "Muhammad" and "محمد" all give "mhmd";
    "Abd al-Rahman", "Abdelrahman" and "Abdurrahman" give "bdrhmn"; "ተስፋይ" and "Tesfaye" give
    "tsf". Pure and deterministic; an empty name gives ""."""
    return " ".join(t.skeleton for t in _tokens(name))


# --- Keys ------------------------------------------------------------------------------------

def _birth_years(identity: Identity, tolerance: int) -> list[int]:
    if identity.date_of_birth is None:
        return []
    year = identity.date_of_birth.year
    return list(range(year - tolerance, year + tolerance + 1))


def match_keys(identity: Identity) -> set[str]:
    """The match keys of ``identity``: short, deterministic, normalised strings.

    Two people who may be the same share at least one key. Every key joins name skeletons with
    something that narrows them (never a name alone, never a yes/no field):

    - ``m1:py:<a>|<b>|<year>``: two name skeletons (unordered, so name order does not matter) and
      a birth year; an estimated year gives the years within ``ESTIMATED_YEAR_TOLERANCE``.
    - ``m1:pn:<a>|<b>|<NAT>|<year>``: two name skeletons, the nationality and the birth years
      within one year either side (a mistyped year), or within the estimate; every year from 1920
      to 2035 when the date of birth is unknown, so such a person is still found (and finds).
    - ``m1:td:<a>|<YYYYMMDD>|<NAT>``: one name skeleton, a full date of birth known to the day and
      not estimated, and the nationality: finds a person whose other name is spelt beyond reach.

    Pairs are taken within each reading of the name (primary, each alias, the original script);
    a one-token name pairs with itself. No name gives no key, nor does a name with neither a date
    of birth nor a nationality to narrow it by. The service blind-indexes the keys
    and looks up candidates by equality; the skeletons are the only name material in them."""
    readings = _readings(identity)
    if not readings:
        return set()
    dob = identity.date_of_birth
    nationality = identity.nationality if identity.nationality not in _UNKNOWN_NATIONALITIES else None
    years = _birth_years(identity, ESTIMATED_YEAR_TOLERANCE if identity.dob_estimated else 0)
    if dob is None:
        nationality_years = list(_ANY_BIRTH_YEAR)
    else:
        nationality_years = _birth_years(identity, ESTIMATED_YEAR_TOLERANCE if identity.dob_estimated
                                         else _NATIONALITY_YEAR_WINDOW)
    exact_day = dob is not None and identity.dob_precision == "day" and not identity.dob_estimated
    keys: set[str] = set()
    for reading in readings:
        skeletons = sorted({t.skeleton for t in reading.tokens})
        pairs = list(combinations(skeletons, 2)) or [(skeletons[0], skeletons[0])]
        for a, b in pairs:
            keys.update(f"{KEY_VERSION}:py:{a}|{b}|{year}" for year in years)
            if nationality:
                keys.update(f"{KEY_VERSION}:pn:{a}|{b}|{nationality}|{year}" for year in nationality_years)
        if exact_day and nationality:
            keys.update(f"{KEY_VERSION}:td:{s}|{dob:%Y%m%d}|{nationality}" for s in skeletons)
    return keys


# --- Scores ----------------------------------------------------------------------------------

def _token_similarity(a: _Token, b: _Token) -> float:
    if a.abjad or b.abjad:
        return Indel.normalized_similarity(a.skeleton, b.skeleton)
    if (b.text.endswith("a") and a.phonetic + "A" == b.phonetic) or (
            a.text.endswith("a") and b.phonetic + "A" == a.phonetic):
        return _FEMININE_PAIR  # Samir/Samira, Farid/Farida, Oleksandr/Oleksandra: two names
    return max(Indel.normalized_similarity(x, y) for x in a.readings for y in b.readings)


def _bag_similarity(a: tuple[_Token, ...], b: tuple[_Token, ...]) -> float:
    """Order-free similarity of two token bags: the best one-to-one pairing of the smaller bag
    into the larger, each pair's similarity squared, unmatched tokens of the larger costing
    ``_EXTRA_TOKEN_WEIGHT`` each."""
    if not a or not b:
        return 0.0
    small, large = (a, b) if len(a) <= len(b) else (b, a)
    matrix = [[_token_similarity(x, y) ** _TOKEN_POWER for y in large] for x in small]
    if len(large) <= 7:
        best = max(sum(matrix[i][j] for i, j in enumerate(order))
                   for order in permutations(range(len(large)), len(small)))
    else:  # names this long are rare: greedy is good enough
        best, used = 0.0, set()
        for row in matrix:
            j = max((j for j in range(len(large)) if j not in used), key=row.__getitem__)
            used.add(j)
            best += row[j]
    return best / (len(small) + _EXTRA_TOKEN_WEIGHT * (len(large) - len(small)))


def _name_similarity(probe_readings: list[_Reading], candidate_readings: list[_Reading]) -> tuple[float, list[str]]:
    best, best_pair = 0.0, None
    for p in probe_readings:
        for c in candidate_readings:
            similarity = _bag_similarity(p.tokens, c.tokens)
            if similarity > best + 1e-9:
                best, best_pair = similarity, (p, c)
    if best_pair is None:
        return 0.0, ["name_different"]
    if best >= 0.999:
        reasons = ["name_exact"]
    else:
        reasons = ["name_similar" if best >= _NAME_SIMILAR else "name_different"]
    p, c = best_pair
    if p.source == "primary" and c.source == "primary" and p.given and p.family and c.given and c.family:
        straight = (_bag_similarity(p.given, c.given) + _bag_similarity(p.family, c.family)) / 2
        crossed = (_bag_similarity(p.given, c.family) + _bag_similarity(p.family, c.given)) / 2
        if crossed >= _NAME_SIMILAR and crossed > straight + 0.2:
            reasons.append("names_swapped")
    if "alias" in (p.source, c.source):
        reasons.append("alias_match")
    if "script" in (p.source, c.source) or any(t.abjad for t in p.tokens + c.tokens):
        reasons.append("script_match")
    return best, reasons


_PRECISION_RANK = {"year": 0, "month": 1, "day": 2}


def _effective_precision(identity: Identity) -> str:
    dob = identity.date_of_birth
    # 1 January "to the day" is the usual placeholder when only the year was known.
    if identity.dob_precision == "day" and dob is not None and (dob.month, dob.day) == (1, 1):
        return "year"
    return identity.dob_precision


def _dob_reason(probe: Identity, candidate: Identity) -> str:
    a, b = probe.date_of_birth, candidate.date_of_birth
    if a is None or b is None:
        return "dob_unknown"
    if probe.dob_estimated or candidate.dob_estimated:
        return "dob_compatible" if abs(a.year - b.year) <= ESTIMATED_YEAR_TOLERANCE else "dob_conflict"
    if probe.dob_precision == candidate.dob_precision == "day" and a == b:
        return "dob_exact"
    precision = min(_effective_precision(probe), _effective_precision(candidate), key=_PRECISION_RANK.get)
    parts_a, parts_b = (a.year, a.month, a.day), (b.year, b.month, b.day)
    width = _PRECISION_RANK[precision] + 1
    differing = [i for i in range(width) if parts_a[i] != parts_b[i]]
    if not differing:
        return "dob_compatible"
    if precision == "day" and a.year == b.year and (a.month, a.day) == (b.day, b.month):
        return "dob_transposed"
    if len(differing) == 1 and (differing != [0] or abs(a.year - b.year) == 1):
        return "dob_close"  # one part differs (a slip of the pen), a year by one at most
    return "dob_conflict"


def _nationality_reason(probe: Identity, candidate: Identity) -> str:
    a, b = probe.nationality, candidate.nationality
    if not a or not b or a in _UNKNOWN_NATIONALITIES or b in _UNKNOWN_NATIONALITIES:
        return "nationality_unknown"
    return "nationality_same" if a == b else "nationality_different"


def score(probe: Identity, candidate: Identity) -> MatchResult:
    """How likely ``candidate`` is the same person as ``probe``.

    ``score`` = name similarity x date-of-birth factor x nationality factor, rounded to 4 places:
    - names: every reading of one (primary, aliases, original script) against every reading of
      the other, the best counts; each reading is a bag of transliterated tokens, so order,
      swapped given and family names and extra generations of a name chain cost little;
    - date of birth: exact 1.0, compatible at the coarser precision or within an estimate 0.95,
      day and month transposed 0.9, unknown 0.85, one part differs (a year by one) 0.8, else 0.4;
    - nationality: same 1.0, unknown 0.95, different 0.75.
    ``is_likely_duplicate`` is ``score >= LIKELY_DUPLICATE_THRESHOLD``. ``reasons`` lists the name
    reasons (name_exact/name_similar/name_different, then names_swapped, alias_match,
    script_match when they apply), one dob_* reason and one nationality_* reason."""
    return _score(probe, _readings(probe), candidate)


def _score(probe: Identity, probe_readings: list[_Reading], candidate: Identity) -> MatchResult:
    name, reasons = _name_similarity(probe_readings, _readings(candidate))
    dob = _dob_reason(probe, candidate)
    nationality = _nationality_reason(probe, candidate)
    value = round(name * _DOB_FACTOR[dob] * _NATIONALITY_FACTOR[nationality], 4)
    return MatchResult(score=value, is_likely_duplicate=value >= LIKELY_DUPLICATE_THRESHOLD,
                       reasons=[*reasons, dob, nationality])


def could_be_likely_duplicate(probe: Identity, candidate: Identity) -> bool:
    """False when ``candidate`` cannot reach ``LIKELY_DUPLICATE_THRESHOLD`` against ``probe``
    whatever its names: the name similarity is at most 1, so a date-of-birth factor times
    nationality factor below the threshold settles it. Reads only the dates, their precision and
    estimation, and the nationalities (the names of ``candidate`` may be empty). Exact, never a
    guess: ``score(probe, c).is_likely_duplicate`` implies ``could_be_likely_duplicate(probe, c)``.
    Cheap, so the duplicate check decrypts and compares names only for the candidates it leaves
    (a common name at a million cases shares keys with hundreds of people born the same year)."""
    ceiling = _DOB_FACTOR[_dob_reason(probe, candidate)] * _NATIONALITY_FACTOR[_nationality_reason(probe, candidate)]
    return round(ceiling, 4) >= LIKELY_DUPLICATE_THRESHOLD


def rank_candidates(probe: Identity, candidates: Mapping[Hashable, Identity] | Iterable[tuple[Hashable, Identity]],
                    ) -> list[tuple[Hashable, MatchResult]]:
    """Score every candidate against ``probe``, best first (ties keep the order given).

    ``candidates`` is a mapping of id to Identity or an iterable of (id, Identity) pairs; the ids
    are returned as given. Meant for the few people a key lookup found, not for a whole table."""
    pairs = candidates.items() if isinstance(candidates, Mapping) else candidates
    probe_readings = _readings(probe)
    scored = [(candidate_id, _score(probe, probe_readings, identity)) for candidate_id, identity in pairs]
    return sorted(scored, key=lambda item: -item[1].score)
