"""The registration form's controls as HTML, cheaply.

The registration and edit pages hold about 150 controls per person. Rendered through WTForms'
own widgets and Jinja macros, their attributes went through ``Markup.format`` one by one and each
control through three macro calls: most of the page's CPU time. These helpers write exactly the
same markup (same attributes, same order, same escaping) with plain string building:
``control``, ``check`` and ``group`` are the templates' ``m.control``, ``m.check`` and ``m.group``
(see intake/_macros.html), and the widgets below are WTForms' widgets with the fast attribute
writer. Every value and text is escaped here, as Jinja's autoescape did.
"""

from __future__ import annotations

from jinja2 import pass_context
from markupsafe import Markup, escape
from wtforms import widgets
from wtforms.widgets.core import clean_key


def attributes(**kwargs) -> Markup:
    """WTForms' ``html_params`` (sorted keys, ``True`` alone, ``False`` left out, values escaped),
    without its per-attribute ``Markup.format``."""
    params = []
    for key, value in sorted(kwargs.items()):
        if value is True:
            params.append(clean_key(key))
        elif value is not False:
            params.append(f'{clean_key(key)}="{str(escape(value)).replace(chr(34), "&quot;")}"')
    return Markup(" ".join(params))  # noqa: S704 - every value is escaped above


class TextInput(widgets.TextInput):
    html_params = staticmethod(attributes)


class DateInput(widgets.DateInput):
    html_params = staticmethod(attributes)


class TelInput(widgets.TelInput):
    html_params = staticmethod(attributes)


class EmailInput(widgets.EmailInput):
    html_params = staticmethod(attributes)


class CheckboxInput(widgets.CheckboxInput):
    html_params = staticmethod(attributes)


def _validation_attributes(widget, field, kwargs: dict) -> None:
    """The field's flags a widget shows as attributes (``required``, ``maxlength``...), as WTForms does."""
    flags = getattr(field, "flags", None)
    if flags:
        for key in dir(flags):
            if key in widget.validation_attrs and key not in kwargs:
                kwargs[key] = getattr(flags, key)


class TextArea(widgets.TextArea):
    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        _validation_attributes(self, field, kwargs)
        return Markup(  # noqa: S704 - attributes and content escaped
            f"<textarea {attributes(name=field.name, **kwargs)}>\r\n{escape(field._value())}</textarea>")


class Select(widgets.Select):
    """A single <select> of a short coded list (sex, document type, yes / no...)."""

    def __call__(self, field, **kwargs):
        kwargs.setdefault("id", field.id)
        _validation_attributes(self, field, kwargs)
        html = [f"<select {attributes(name=field.name, **kwargs)}>"]
        for choice in field.iter_choices():
            value, label, selected, render_kw = choice
            options = dict(render_kw or {}, value=str(value) if value is True else value)
            if selected:
                options["selected"] = True
            html.append(f"<option {attributes(**options)}>{escape(label)}</option>")
        html.append("</select>")
        return Markup("".join(html))  # noqa: S704 - attributes and labels escaped


# -- the templates' field helpers ------------------------------------------------------------------------

def _label(field, text=None) -> str:
    return f'<label for="{escape(field.id)}">{escape(text or field.label.text)}</label>'


def _described(field, hint) -> str:
    ids = []
    if hint:
        ids.append(f"{field.id}-hint")
    if field.errors:
        ids.append(f"{field.id}-error")
    return " ".join(ids)


def _hint(field, hint) -> str:
    return f'<p class="hint" id="{escape(field.id)}-hint">{escape(hint)}</p>' if hint else ""


def _errors(field) -> str:
    if not field.errors:
        return ""
    items = "".join(f"<li>{escape(message)}</li>" for message in field.errors)
    return f'<ul class="errors" id="{escape(field.id)}-error">{items}</ul>'


def control(field, hint=None, label=None, wide=False) -> Markup:
    """A labelled control with its hint and errors, linked by aria-describedby."""
    hint = hint or field.description
    described = _described(field, hint)
    attrs = {}
    if described:
        attrs["aria-describedby"] = described
    if field.errors:
        attrs["aria-invalid"] = "true"
    classes = "field" + (" field-error" if field.errors else "") + (" field-wide" if wide else "")
    return Markup(  # noqa: S704 - every part escaped above or by the widget
        f'<div class="{classes}">\n{_label(field, label)}\n{_hint(field, hint)}\n{_errors(field)}\n'
        f"{field(**attrs)}\n</div>\n")


def check(field, hint=None) -> Markup:
    """A checkbox with its label after it."""
    hint = hint or field.description
    described = _described(field, hint)
    box = field(**({"aria-describedby": described} if described else {}))
    return Markup(  # noqa: S704 - every part escaped above or by the widget
        f'<div class="field checkbox{" field-error" if field.errors else ""}">\n{_errors(field)}\n'
        f"{box} {_label(field)}\n{_hint(field, hint)}\n</div>\n")


def group(field, hint=None) -> Markup:
    """A group of checkboxes (a multiple choice) in its own fieldset."""
    described = _described(field, hint)
    described_by = f' aria-describedby="{escape(described)}"' if described else ""
    boxes = []
    for index, (value, label, selected, _render_kw) in enumerate(field.iter_choices()):
        option_id = f"{field.id}-{index}"
        box = attributes(checked=bool(selected), id=option_id, name=field.name, type="checkbox", value=value,
                         **(field.render_kw or {}))
        boxes.append(f'<div class="checkbox"><input {box}> <label for="{escape(option_id)}">'
                     f"{escape(label or value)}</label></div>")
    return Markup(  # noqa: S704 - every part escaped above
        f'<fieldset class="checkbox-group{" field-error" if field.errors else ""}" id="{escape(field.id)}"'
        f"{described_by}>\n<legend>{escape(field.label.text)}</legend>\n{_hint(field, hint)}\n{_errors(field)}\n"
        f'<div class="checkbox-grid">\n{"".join(boxes)}\n</div>\n</fieldset>\n')


# -- sections and repeatable groups ----------------------------------------------------------------------
# Called from the templates with their context (pass_context): a section's errors come from the
# page's ``section_errors``. ``section`` is used as ``{% call m.section(f) %}...{% endcall %}``:
# Jinja hands the body over as ``caller``.

def _section_errors(context, field_id: str) -> str:
    errors = context["section_errors"].get(field_id)
    if not errors:
        return ""
    items = "".join(f"<li>{escape(message)}</li>" for message in errors)
    return f'<ul class="errors section-errors" id="{escape(field_id)}-error">{items}</ul>'


@pass_context
def section_errors_for(context, field_id: str) -> Markup:
    """The errors on a whole section, under its legend."""
    return Markup(_section_errors(context, field_id))  # noqa: S704 - escaped above


@pass_context
def section(context, field, legend=None, cls="section", caller=None) -> Markup:
    """A fieldset for a section (FormField) or an entry of a repeatable group: legend, errors, body."""
    errors = _section_errors(context, field.id)
    described = f' aria-describedby="{escape(field.id)}-error"' if errors else ""
    return Markup(  # noqa: S704 - every part escaped above; the body is rendered, autoescaped template
        f'<fieldset class="{escape(cls)}{" field-error" if errors else ""}" id="{escape(field.id)}"{described}>\n'
        f"<legend>{escape(legend or field.label.text)}</legend>\n{errors}\n{caller() if caller else ''}\n</fieldset>\n")


def _has_room(field_list) -> bool:
    return not field_list.max_entries or len(field_list.entries) < field_list.max_entries


def _add_button(field_list, label) -> str:
    return (f'<p><button type="submit" name="add" value="{escape(field_list.id)}" formnovalidate>{escape(label)}'
            "</button></p>\n")


@pass_context
def repeated(context, field_list, add_label=None) -> Markup:
    """Repeated single controls (nationalities, languages, transit countries): numbered labels, and
    an "Add" button while there is room."""
    controls = "".join(control(entry, label=f"{entry.label.text} {number}")
                       for number, entry in enumerate(field_list, 1))
    add = _add_button(field_list, add_label) if add_label and _has_room(field_list) else ""
    return Markup(  # noqa: S704 - every part escaped above or by control()
        f'<div class="repeated" id="{escape(field_list.id)}">\n{_section_errors(context, field_list.id)}\n'
        f"{controls}\n{add}</div>\n")


def add_button(field_list, label) -> Markup:
    """"Add ..." for a repeatable group, while there is room (it works without JavaScript)."""
    return Markup(_add_button(field_list, label) if _has_room(field_list) else "")  # noqa: S704 - escaped


def remove_button(entry, label) -> Markup:
    return Markup(  # noqa: S704 - escaped
        f'<p><button type="submit" name="remove" value="{escape(entry.id)}" class="danger" formnovalidate>'
        f"{escape(label)}</button></p>\n")


# -- read-only display (the case page) ---------------------------------------------------------------------

def show(field) -> Markup:
    """Read-only display of a field or section of the case: the templates' ``m.show`` (a section
    as a list of its fields, repeated entries numbered, "none recorded" for an empty one)."""
    from flask_babel import gettext

    return Markup(_show(field, f'<span class="muted">{escape(gettext("none recorded"))}</span>'))  # noqa: S704


def _show(field, none_recorded: str) -> str:
    from app.intake.forms import display_value, is_blank, is_empty  # forms imports this module

    kind = field.type
    if kind == "FormField":
        if is_empty(field):
            return none_recorded
        items = "".join(f"<dt>{escape(sub.label.text)}</dt><dd>{_show(sub, none_recorded)}</dd>"
                        for sub in field.form)
        return f'<dl class="summary">{items}</dl>'
    if kind == "FieldList" and field.entries and field.entries[0].type == "FormField":
        shown = [entry for entry in field.entries if not is_blank(entry)]
        if not shown:
            return none_recorded
        return "".join(f'<div class="entry"><p class="entry-title">{escape(entry.label.text)} {number}</p>'
                       f"{_show(entry, none_recorded)}</div>" for number, entry in enumerate(shown, 1))
    long_text = " long-text" if kind == "TextAreaField" else ""
    return f'<span class="value{long_text}" dir="auto">{escape(display_value(field))}</span>'
