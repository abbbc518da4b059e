"""The accessibility checker checks: axe-core runs inside the application's pages with their real
Content-Security-Policy in force (no inline script runs there, the journeys' browser does not
bypass it), and it does report a violation when a page has one. Without this, a scan that
silently did nothing would pass every journey."""

from __future__ import annotations

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e


def test_axe_runs_under_the_apps_csp_and_finds_a_broken_label(browser, live_server, checkpoint):
    context = browser.new_context(base_url=live_server.url)
    try:
        page = context.new_page()
        response = page.goto("/auth/login")
        policy = response.headers["content-security-policy"]
        assert "script-src 'self'" in policy and "unsafe-inline" not in policy, policy
        # The policy is enforced in this browser: an inline script is refused (this is what
        # page.add_script_tag would do with axe-core's source)...
        with pytest.raises(PlaywrightError, match="Content Security Policy"):
            page.add_script_tag(content="window.inlineScriptRan = true")
        assert page.evaluate("window.inlineScriptRan === undefined")
        # ...while axe, evaluated through DevTools, does: the sign-in page as served is clean.
        checkpoint(page, "sign-in page as served")
        assert checkpoint.blocking() == []

        # Break it: the username field loses its label.
        username = page.get_by_label("Username", exact=True)
        expect(username).to_be_visible()
        page.evaluate("document.querySelector('label[for=username]').removeAttribute('for')")
        checkpoint(page, "sign-in page with a broken label")
        broken = [f for f in checkpoint.blocking() if f.step == "sign-in page with a broken label"]
        assert [(f.rule, f.impact) for f in broken] == [("label", "critical")], broken
        assert broken[0].targets == ["#username"]
    finally:
        context.close()
