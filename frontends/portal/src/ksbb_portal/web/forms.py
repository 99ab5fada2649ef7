"""Form values in, API problems out: what a field holds, and which message goes next to which field."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from ksbb_portal import i18n
from ksbb_portal.api import ApiProblem


def text(form: FormData, name: str) -> str | None:
    """A text field, stripped; None when empty."""
    value = form.get(name)
    if not isinstance(value, str):
        return None
    value = value.strip()
    return value or None


def number_or_text(form: FormData, name: str) -> int | str | None:
    """A whole number as a number; anything else as typed, so the API names the problem next to the field."""
    value = text(form, name)
    if value is None:
        return None
    digits = value.replace(".", "").replace(" ", "")
    return int(digits) if digits.isdigit() else value


def many(form: FormData, name: str) -> list[str]:
    """Every non-empty value of a multi-valued field (checkboxes, multi-selects)."""
    return [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]


def values_of(form: FormData) -> dict[str, Any]:
    """What the person typed, to show it again (multi-valued fields as lists; the CSRF token left out)."""
    kept: dict[str, Any] = {}
    for key in form:
        if key in ("csrf_token",):
            continue
        listed = [v for v in form.getlist(key) if isinstance(v, str)]
        kept[key] = listed if len(listed) > 1 else (listed[0] if listed else "")
    return kept


@dataclass
class Problems:
    """Messages for one form: per field, and for the form as a whole."""

    fields: dict[str, str] = field(default_factory=dict)
    general: list[str] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.fields or self.general)


def problems_of(
    problem: ApiProblem, lang: str, known_fields: set[str], renames: dict[str, str] | None = None
) -> Problems:
    """The API's answer as messages in the person's language, next to the fields of this form.

    A field the form does not show (or no field) becomes a message for the whole form.
    """
    found = Problems()
    renames = renames or {}
    main = i18n.problem_message(problem, lang)
    named = problem.field_errors()
    if problem.code != "validation_error":
        named = {problem.field: main} if problem.field else {}
    for api_field, message in named.items():
        shown = i18n.validation_message(message, lang) if problem.code == "validation_error" else message
        target = renames.get(api_field, api_field)
        if target in known_fields:
            found.fields.setdefault(target, shown)
        else:
            label = i18n.field_label(api_field, lang)
            found.general.append(f"{label}: {shown}" if label else shown)
    if not found:
        found.general.append(main)
    return found
