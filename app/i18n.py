"""Language choice: the signed-in user's saved preference, then the session, then the browser."""

from __future__ import annotations

from flask import Flask, current_app, g, has_request_context, request, session
from flask_babel import get_locale, get_translations
from flask_babel.speaklater import LazyString
from flask_login import current_user
from jinja2 import pass_context
from markupsafe import Markup


def select_locale() -> str:
    languages = current_app.config["LANGUAGES"]
    if not has_request_context():
        # CLI commands and background work: messages in the default language.
        return current_app.config["BABEL_DEFAULT_LOCALE"]
    if current_user and current_user.is_authenticated and current_user.locale in languages:
        return current_user.locale
    chosen = session.get("locale")
    if chosen in languages:
        return chosen
    return request.accept_languages.best_match(list(languages)) or current_app.config["BABEL_DEFAULT_LOCALE"]


def text_direction() -> str:
    return "rtl" if str(get_locale()) in current_app.config["RTL_LANGUAGES"] else "ltr"


def request_catalogue():
    """This request's translations, looked up once per request (application context) and kept on
    ``g``. flask_babel finds the locale and the catalogue again on every call, through about ten
    context-local lookups: a form of 150 labels paid that 150 times. The locale is fixed for a
    request (it is chosen once, and nothing here changes it mid-request)."""
    catalogue = g.get("_request_catalogue")
    if catalogue is None:
        catalogue = g._request_catalogue = get_translations()
    return catalogue


def quick_gettext(string: str) -> str:
    """flask_babel's ``gettext`` of a message without variables, through ``request_catalogue``;
    outside an application context, the message itself (as flask_babel does)."""
    if not g:
        return string
    return request_catalogue().ugettext(string)


def lazy_gettext(string: str) -> LazyString:
    """flask_babel's ``lazy_gettext`` for labels read many times per page (the intake forms)."""
    return LazyString(quick_gettext, string)


def bound_gettext() -> dict:
    """``gettext`` and ``ngettext`` for one render, bound to this request's catalogue.

    Jinja's ``_()`` resolves ``gettext`` from the render context first, so these replace
    flask_babel's installed callables for one render; they do exactly what those do (Jinja's
    "newstyle" gettext: the translation, marked safe under autoescape, then ``%`` with the
    escaped variables) without flask_babel's lookup of the locale and catalogue on every call,
    which on a queue page (about 35 strings, layout included) cost more than the queue query."""
    translations = request_catalogue()

    @pass_context
    def gettext(context, string, **variables):
        text = translations.ugettext(string)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 - a catalogue message, trusted as Jinja trusts it
        return text % variables

    @pass_context
    def ngettext(context, singular, plural, num, **variables):
        variables.setdefault("num", num)
        text = translations.ungettext(singular, plural, num)
        if context.eval_ctx.autoescape:
            text = Markup(text)  # noqa: S704 - a catalogue message, trusted as Jinja trusts it
        return text % variables

    return {"gettext": gettext, "ngettext": ngettext}


def init_i18n(app: Flask) -> None:
    @app.context_processor
    def language_context():
        locale = str(get_locale())
        return {"text_direction": "rtl" if locale in app.config["RTL_LANGUAGES"] else "ltr",
                "current_locale": locale, "available_languages": app.config["LANGUAGES"], **bound_gettext()}
