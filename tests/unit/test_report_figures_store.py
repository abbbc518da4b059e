"""The in-process store of kept report figures: bounded, oldest out first, each entry until its expiry."""

from __future__ import annotations

from app.reports import figures


def test_memory_store_keeps_at_most_its_bound_dropping_the_oldest(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(figures.time, "monotonic", lambda: clock[0])
    store = figures.MemoryStore()
    bound = figures._MEMORY_ENTRIES
    for n in range(bound + 3):
        store.set(f"k{n}", f"v{n}", 300)
    assert [store.get(f"k{n}") for n in range(3)] == [None, None, None]
    assert store.get("k3") == "v3" and store.get(f"k{bound + 2}") == f"v{bound + 2}"
    clock[0] = 299.9
    assert store.get("k3") == "v3"
    clock[0] = 300.0
    assert store.get("k3") is None


def test_memory_store_set_again_renews_the_entry(monkeypatch):
    clock = [0.0]
    monkeypatch.setattr(figures.time, "monotonic", lambda: clock[0])
    store = figures.MemoryStore()
    store.set("k", "old", 10)
    clock[0] = 5
    store.set("k", "new", 10)
    clock[0] = 12
    assert store.get("k") == "new"
