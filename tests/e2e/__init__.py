"""End-to-end tests in a real browser. A package so that its conftest is the module
``e2e.conftest``: the other test directories import helpers from tests/conftest.py as the module
``conftest``, which a second top-level ``conftest`` would shadow."""
