"""app/memory.py: the allocator is trimmed after every N-th response is sent, never otherwise."""

from __future__ import annotations

import sys

import pytest
from flask import Flask

from app.memory import init_memory_trim, malloc_trim


def served(every: int, requests: int) -> list[int]:
    app = Flask("trim_test")
    app.config["MALLOC_TRIM_EVERY_REQUESTS"] = every
    trims: list[int] = []
    init_memory_trim(app, trim=lambda pad: trims.append(pad) or 1)
    app.add_url_rule("/", "home", lambda: "ok")
    client = app.test_client()
    for _ in range(requests):
        response = client.get("/")
        assert response.status_code == 200
        response.close()  # the server closes the response once it is sent
    return trims


def test_every_nth_response_trims_once_it_is_closed():
    assert served(every=3, requests=10) == [0, 0, 0]


def test_zero_never_trims():
    assert served(every=0, requests=10) == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc_trim is a Linux (glibc) call")
def test_glibc_trim_is_found_and_runs():
    trim = malloc_trim()
    assert trim is not None
    assert trim(0) in (0, 1)  # 1: memory was released, 0: there was none to release
