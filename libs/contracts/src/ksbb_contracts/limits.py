"""Bounds of every input field of the public HTTP APIs, in one place.

The services' request models read their bounds from here, so the OpenAPI documents show the same
figures (maxLength, maximum, …) for the same field in every service, and the domain rules that need a
figure (the date horizon, the sub-count rule) read the same constants. Numbers and booleans in request
bodies are strict: `"quantity": "5"` or `true` is refused with 422, never silently converted.

Tuples are `(minimum, maximum)`, inclusive.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated

from pydantic import Field

# -- dates --------------------------------------------------------------------------------------------

#: How far ahead a date may lie: a planned delivery, a need's needed-by date, an offer's available-until.
#: One year and a day covers a yearly programme (and a leap year); anything later is a typo or an attack
#: on the sweeps that compute with these dates.
HORIZON_DAYS = 366
HORIZON_TEXT = f"at most {HORIZON_DAYS} days from today"


def latest_allowed(today: date) -> date:
    """The last date within the programme's horizon."""
    return today + timedelta(days=HORIZON_DAYS)


# -- quantities and counts ----------------------------------------------------------------------------

#: Units of goods in one need, pledge, offer or receipt.
QUANTITY = (1, 1_000_000)
#: Beneficiaries of one recipient unit (a big RW has some thousands of households).
HOUSEHOLDS_MAX = 100_000
PEOPLE_MAX = 500_000
#: RW and RT numbers inside a kelurahan.
RW_RT = (1, 99)
#: Deliveries per second an NGO endpoint accepts.
WEBHOOK_RATE_MAX = 1000

# -- strings ------------------------------------------------------------------------------------------

#: A plausible e-mail address (checked loosely; delivery proves it).
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"
EMAIL_MAX = 200
#: A phone number as typed (normalised by the service that stores it).
PHONE_PATTERN = r"^\+?[0-9 ()-]{6,20}$"
PHONE_MAX = 30
PERSON_NAME_MAX = 120
DISPLAY_NAME = (1, 120)
ORGANISATION_NAME = (2, 200)
RECIPIENT_NAME = (3, 200)
STREET_ADDRESS = (3, 300)
DESCRIPTION_MAX = 200
NOTES_MAX = 2000
UNIT_MAX = 40
#: Identifiers given in a body (`need_id` of a pledge, `organisation_id` of a recipient, …).
ID = (1, 100)

#: A Kemendagri area code (`31.71.01.1001` is the longest kind).
AREA_CODE_MAX = 20
AREA_CODES_MAX = 400
OFFER_AREA_CODES_MAX = 50

TRANSITION_REASON_MAX = 2000
DOCUMENT_REFS_MAX = 20
DOCUMENT_REF_MAX = 300
DUPLICATE_OVERRIDE_REASON_MAX = 500
ORGANISATION_STATUS_REASON = (1, 1000)
NEED_CANCEL_REASON = (1, 500)
PLEDGE_NOTE_MAX = 500
PLEDGE_REASON = (1, 300)
PROOF_REF_MAX = 300

REPORT_TEXT = (10, 2000)
REPORT_CONTACT_MAX = 200
RESOLUTION_NOTE = (1, 2000)

WEBHOOK_URL = (8, 2048)
WEBHOOK_DESCRIPTION_MAX = 500

# -- headers and paging -------------------------------------------------------------------------------

IDEMPOTENCY_KEY = (1, 200)
PAGE_SIZE = (1, 200)
#: A page cursor is opaque, short and handed out by the service; anything longer is not one of ours.
CURSOR_MAX = 500
#: A live-feed position (SSE id / `after`): the entry's sequence number, below 2^63 (18 digits) …
STREAM_SEQ_DIGITS_MAX = 18
#: … or, from before sequence numbers existed, a feed cursor (`<event time>~<event id>`).
STREAM_CURSOR_MAX = 200

# -- strict types for request bodies ------------------------------------------------------------------

#: A whole number given as a JSON number (never a string or a boolean).
StrictCount = Annotated[int, Field(strict=True)]
#: A number given as a JSON number (never a string or a boolean).
StrictNumber = Annotated[float, Field(strict=True)]
#: A JSON `true` or `false` (never "yes", 1 or "true").
StrictFlag = Annotated[bool, Field(strict=True)]
