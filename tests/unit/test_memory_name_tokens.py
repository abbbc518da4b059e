"""A web worker's name-token cache stays small however many distinct names it meets (M1).

Every registration's duplicate check tokenises the names of its candidates, so a long-running
worker meets an unbounded stream of distinct names: the cache must hold few of them."""

from __future__ import annotations

import tracemalloc

from app.intake import matching

# What the worker may keep for names, whatever it has seen (M1 allows a worker 150 MB in all).
NAME_CACHE_BUDGET_BYTES = 5 * 1024 * 1024


def _distinct_names(count: int) -> list[str]:
    """Plausible, pairwise distinct two-word names (tokenising them is what costs memory)."""
    syllables = ("ba", "da", "ha", "ka", "la", "ma", "na", "ra", "sa", "ta", "za", "fi", "mu", "yo")
    names = []
    for n in range(count):
        word, rest = "", n
        for _ in range(4):
            word += syllables[rest % len(syllables)]
            rest //= len(syllables)
        names.append(f"{word.title()} {syllables[n % 7].title()}hir")
    return names


def test_the_token_cache_keeps_a_bounded_number_of_names():
    matching._tokens.cache_clear()
    try:
        for name in _distinct_names(20_000):
            matching._tokens(name)
        assert matching._tokens.cache_info().currsize <= matching.TOKEN_CACHE_SIZE <= 8192
    finally:
        matching._tokens.cache_clear()


def test_the_token_cache_full_stays_within_its_memory_budget():
    matching._tokens.cache_clear()
    names = _distinct_names(20_000)
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for name in names:
            matching._tokens(name)
        kept = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
        matching._tokens.cache_clear()
    assert kept <= NAME_CACHE_BUDGET_BYTES, f"{kept / 1e6:.1f} MB kept for names"


def test_a_cached_name_gives_the_same_tokens_as_a_fresh_one():
    matching._tokens.cache_clear()
    first = matching._tokens("Huda Hassan Al-Hashimi")
    again = matching._tokens("Huda Hassan Al-Hashimi")
    uncached = matching._tokens.__wrapped__("Huda Hassan Al-Hashimi")
    assert first is again and first == uncached
    matching._tokens.cache_clear()
