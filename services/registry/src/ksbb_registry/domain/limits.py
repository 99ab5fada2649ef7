"""Bounds of the registry's input fields, in one place (the API's request models read them from here)."""

from __future__ import annotations

#: A plausible e-mail address (checked loosely; delivery proves it).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
EMAIL_MAX = 200

PERSON_NAME_MAX = 120
ORGANISATION_NAME = (2, 200)
RECIPIENT_NAME = (3, 200)
STREET_ADDRESS = (3, 300)
DESCRIPTION_MAX = 200
NOTES_MAX = 2000
AREA_CODES_MAX = 400
RW_RT = (1, 99)

HOUSEHOLDS_MAX = 100_000
PEOPLE_MAX = 500_000

TRANSITION_REASON_MAX = 2000
DOCUMENT_REFS_MAX = 20
DUPLICATE_OVERRIDE_REASON_MAX = 500
ORGANISATION_STATUS_REASON = (1, 1000)

NEED_QUANTITY = (1, 1_000_000)
UNIT_MAX = 40
CANCEL_REASON = (1, 500)

REPORT_TEXT = (10, 2000)
REPORT_CONTACT_MAX = 200
RESOLUTION_NOTE = (1, 2000)

IDEMPOTENCY_KEY_MAX = 200
PAGE_SIZE = (1, 200)
