"""Pure registry rules: lifecycle transitions, validation, duplicate keys, catalogue and need suggestions."""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass
from datetime import date, timedelta
from enum import StrEnum

from ksbb_contracts.areas import UnknownArea, areas, in_jakarta
from ksbb_contracts.vocab import Item, Priority, RecipientKind, RecipientStatus, Recurrence


class RuleViolation(Exception):
    """A request breaks a domain rule; `status`, `code` and `field` map to the API error."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        field: str | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        self.details = details


# -- lifecycle ----------------------------------------------------------------------------------


class Action(StrEnum):
    """Lifecycle actions on a recipient."""

    VERIFY = "verify"
    ACTIVATE = "activate"
    SUSPEND = "suspend"
    REINSTATE = "reinstate"
    ARCHIVE = "archive"


class Actor(StrEnum):
    """Who may perform an action, relative to the recipient."""

    ADMIN = "admin"
    OWN_FACILITATOR = "own_facilitator"


@dataclass(frozen=True)
class Transition:
    """One row of the lifecycle table."""

    action: Action
    sources: frozenset[RecipientStatus]
    target: RecipientStatus
    actors: frozenset[Actor]
    reason_required: bool


S = RecipientStatus
TRANSITIONS: dict[Action, Transition] = {
    t.action: t
    for t in (
        Transition(
            Action.VERIFY,
            frozenset({S.REGISTERED}),
            S.VERIFIED,
            frozenset({Actor.ADMIN, Actor.OWN_FACILITATOR}),
            reason_required=True,
        ),
        Transition(
            Action.ACTIVATE,
            frozenset({S.VERIFIED}),
            S.ACTIVE,
            frozenset({Actor.ADMIN, Actor.OWN_FACILITATOR}),
            reason_required=False,
        ),
        Transition(
            Action.SUSPEND,
            frozenset({S.ACTIVE}),
            S.SUSPENDED,
            frozenset({Actor.ADMIN, Actor.OWN_FACILITATOR}),
            reason_required=True,
        ),
        Transition(
            Action.REINSTATE,
            frozenset({S.SUSPENDED}),
            S.ACTIVE,
            frozenset({Actor.ADMIN}),
            reason_required=False,
        ),
        Transition(
            Action.ARCHIVE,
            frozenset({S.REGISTERED, S.VERIFIED, S.ACTIVE, S.SUSPENDED}),
            S.ARCHIVED,
            frozenset({Actor.ADMIN}),
            reason_required=True,
        ),
    )
}


def transition(
    action: Action, current: RecipientStatus, actor: Actor | None, reason: str | None
) -> RecipientStatus:
    """The target status of an action; raises RuleViolation (403 not allowed, 409 illegal, 422 no reason)."""
    rule = TRANSITIONS[action]
    if actor is None or actor not in rule.actors:
        raise RuleViolation(403, "forbidden", f"you may not {action.value} this recipient")
    if current not in rule.sources:
        raise RuleViolation(
            409,
            "illegal_transition",
            f"cannot {action.value} a recipient that is {current.value}",
            field="status",
            details={"from": current.value, "action": action.value},
        )
    if rule.reason_required and not (reason and reason.strip()):
        raise RuleViolation(422, "reason_required", f"{action.value} needs a note or reason", field="reason")
    return rule.target


# -- validation ---------------------------------------------------------------------------------

_PHONE_SEPARATORS = re.compile(r"[\s\-().]")
_PHONE = re.compile(r"^(?:\+62|62|0)([1-9]\d{7,11})$")


def normalise_phone(raw: str) -> str:
    """An Indonesian phone number as +62…; raises ValueError for anything else."""
    compact = _PHONE_SEPARATORS.sub("", raw)
    match = _PHONE.fullmatch(compact)
    if not match:
        raise ValueError("not an Indonesian phone number (expected e.g. 0812-3456-7890 or +62 21 1234567)")
    return "+62" + match.group(1)


@dataclass(frozen=True)
class Location:
    """A validated kelurahan with its kecamatan and kota codes."""

    kelurahan_code: str
    kecamatan_code: str
    kota_code: str


def validate_location(
    kelurahan_code: str, *, kecamatan_code: str | None = None, kota_code: str | None = None
) -> Location:
    """Check a kelurahan code (and optional kecamatan/kota codes against its lineage)."""
    try:
        lineage = areas().lineage(kelurahan_code)
    except UnknownArea as exc:
        raise RuleViolation(
            422, "unknown_area", f"unknown kelurahan code {kelurahan_code!r}", field="kelurahan_code"
        ) from exc
    if kecamatan_code is not None and kecamatan_code != lineage.kecamatan.code:
        raise RuleViolation(
            422,
            "area_mismatch",
            f"kelurahan {kelurahan_code} lies in kecamatan {lineage.kecamatan.code}, not {kecamatan_code}",
            field="kecamatan_code",
        )
    if kota_code is not None and kota_code != lineage.kota.code:
        raise RuleViolation(
            422,
            "area_mismatch",
            f"kelurahan {kelurahan_code} lies in kota {lineage.kota.code}, not {kota_code}",
            field="kota_code",
        )
    return Location(lineage.kelurahan.code, lineage.kecamatan.code, lineage.kota.code)


def validate_area_codes(codes: list[str], field: str = "area_codes") -> list[str]:
    """Check that every code is a known area (any level); returns them sorted without duplicates."""
    directory = areas()
    for index, code in enumerate(codes):
        if code not in directory:
            raise RuleViolation(422, "unknown_area", f"unknown area code {code!r}", field=f"{field}.{index}")
    return sorted(set(codes))


def validate_coordinates(lat: float, lon: float) -> None:
    """Coordinates must fall inside Jakarta's bounding box."""
    if not in_jakarta(lat, lon):
        raise RuleViolation(
            422, "outside_jakarta", "coordinates are outside DKI Jakarta", field="coordinates"
        )


def validate_kind(kind: RecipientKind, kind_description: str | None, rw: int | None) -> None:
    """`lainnya` needs a description; `rw_rentan` needs an RW number."""
    if kind is RecipientKind.LAINNYA and not (kind_description and kind_description.strip()):
        raise RuleViolation(
            422, "description_required", "kind 'lainnya' needs a kind_description", field="kind_description"
        )
    if kind is RecipientKind.RW_RENTAN and rw is None:
        raise RuleViolation(422, "rw_required", "an rw_rentan recipient needs its RW number", field="rw")


# -- duplicates ---------------------------------------------------------------------------------

_ABBREVIATIONS = {
    "jl": "jalan",
    "jln": "jalan",
    "gg": "gang",
    "no": "nomor",
    "rt": "rt",
    "rw": "rw",
    "kel": "kelurahan",
    "kec": "kecamatan",
    "yys": "yayasan",
    "ponpes": "pondok pesantren",
    "pp": "pondok pesantren",
}
_NON_WORD = re.compile(r"[^a-z0-9]+")


def normalise_text(text: str) -> str:
    """Lower-case, accents and punctuation removed, common abbreviations expanded, single spaces."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().lower()
    words = [w for w in _NON_WORD.split(ascii_text) if w]
    return " ".join(_ABBREVIATIONS.get(w, w) for w in words)


def identity_key(name: str, street_address: str) -> str:
    """Key under which two recipients count as the same unit (normalised name + address)."""
    return f"{normalise_text(name)}|{normalise_text(street_address)}"


def rw_key(kind: RecipientKind, kelurahan_code: str, rw: int | None) -> str | None:
    """Key of an RW-level recipient: only one rw_rentan per kelurahan + RW."""
    if kind is not RecipientKind.RW_RENTAN or rw is None:
        return None
    return f"{kelurahan_code}/{rw}"


NAME_CLAIM = "name:"
RW_CLAIM = "rw:"


def claim_keys(identity: str | None, rw_unit: str | None) -> list[str]:
    """Claim ids (unique in `recipient_claims`) of a recipient with these duplicate keys."""
    keys = [NAME_CLAIM + identity] if identity else []
    if rw_unit:
        keys.append(RW_CLAIM + rw_unit)
    return keys


def claim_query(claim_id: str) -> dict[str, str]:
    """Recipient filter matching the recipients whose fields carry this claim id."""
    if claim_id.startswith(RW_CLAIM):
        return {"rw_key": claim_id.removeprefix(RW_CLAIM)}
    return {"identity_key": claim_id.removeprefix(NAME_CLAIM)}


def claim_field(claim_id: str) -> str:
    """The request field a duplicate on this claim id is reported against."""
    return "rw" if claim_id.startswith(RW_CLAIM) else "name"


# -- needs --------------------------------------------------------------------------------------

PEOPLE_PER_HOUSEHOLD = 4


@dataclass(frozen=True)
class CatalogueEntry:
    """One catalogue item with its default unit and KSBB reference price."""

    item: Item
    name_id: str
    name_en: str
    unit: str
    reference_price_idr: int | None
    basis: str | None


CATALOGUE: tuple[CatalogueEntry, ...] = (
    CatalogueEntry(
        Item.SEMBAKO,
        "Paket sembako",
        "Staple food package",
        "paket",
        200_000,
        "1 paket per KK per minggu / 1 package per household per week",
    ),
    CatalogueEntry(
        Item.READY_MEALS,
        "Makanan siap saji",
        "Ready-to-eat meals",
        "porsi-hari",
        45_000,
        "per orang per hari / per person per day",
    ),
    CatalogueEntry(
        Item.EID_PACKAGE,
        "Paket Lebaran",
        "Eid package",
        "paket",
        85_000,
        "1 paket per KK, sekali / 1 package per household, once",
    ),
    CatalogueEntry(Item.MASKS, "Masker", "Masks", "buah", None, None),
    CatalogueEntry(Item.HAND_SANITIZER, "Hand sanitizer", "Hand sanitizer", "botol", None, None),
    CatalogueEntry(Item.BABY_MILK, "Susu bayi", "Baby milk", "kaleng", None, None),
    CatalogueEntry(Item.HYGIENE_KIT, "Paket kebersihan", "Hygiene kit", "paket", None, None),
    CatalogueEntry(Item.MEDICINE, "Obat-obatan", "Medicine", "paket", None, None),
    CatalogueEntry(Item.OTHER, "Lainnya", "Other", "unit", None, None),
)


@dataclass(frozen=True)
class Suggestion:
    """A need suggested from beneficiary counts."""

    item: Item
    quantity: int
    unit: str
    recurrence: Recurrence
    priority: Priority
    estimated_value_idr: int
    rationale: str


def effective_counts(households: int, people: int) -> tuple[int, int]:
    """Households and people, filling a missing count with the 1 household = 4 people rule."""
    if households == 0 and people > 0:
        households = math.ceil(people / PEOPLE_PER_HOUSEHOLD)
    if people == 0 and households > 0:
        people = households * PEOPLE_PER_HOUSEHOLD
    return households, people


def suggest_needs(
    kind: RecipientKind,
    households: int,
    people: int,
    children: int,
    elderly: int,
    disabled: int,
    *,
    meal_days: int = 7,
) -> list[Suggestion]:
    """Needs a recipient unit plausibly has, from KSBB's reference packages."""
    households, people = effective_counts(households, people)
    if people == 0:
        return []
    vulnerable_share = min(1.0, (children + elderly + disabled) / people)
    priority = Priority.HIGH if vulnerable_share >= 0.3 else Priority.MEDIUM
    suggestions = []
    if kind is RecipientKind.RW_RENTAN or kind is RecipientKind.LAINNYA:
        suggestions.append(
            Suggestion(
                Item.SEMBAKO,
                households,
                "paket",
                Recurrence.WEEKLY,
                priority,
                households * 200_000,
                f"{households} KK × 1 paket/minggu × Rp200.000",
            )
        )
    else:
        # Residential institutions cook for their residents: ready meals per person per day.
        portions = people * meal_days
        suggestions.append(
            Suggestion(
                Item.READY_MEALS,
                portions,
                "porsi-hari",
                Recurrence.WEEKLY,
                priority,
                portions * 45_000,
                f"{people} orang × {meal_days} hari × Rp45.000",
            )
        )
    suggestions.append(
        Suggestion(
            Item.EID_PACKAGE,
            households,
            "paket",
            Recurrence.NONE,
            Priority.LOW,
            households * 85_000,
            f"{households} KK × 1 paket × Rp85.000",
        )
    )
    return suggestions


def next_period_start(period_start: date, recurrence: Recurrence, today: date) -> date | None:
    """Start of the period that should be open today for a series, if later than `period_start`."""
    if recurrence is Recurrence.NONE:
        return None
    candidate = period_start
    following = _advance(candidate, recurrence)
    while following <= today:
        candidate = following
        following = _advance(candidate, recurrence)
    return candidate if candidate > period_start else None


def following_period(period_start: date, recurrence: Recurrence) -> date | None:
    """When the next period of a series begins."""
    return None if recurrence is Recurrence.NONE else _advance(period_start, recurrence)


def _advance(day: date, recurrence: Recurrence) -> date:
    if recurrence is Recurrence.WEEKLY:
        return day + timedelta(days=7)
    month = day.month % 12 + 1
    year = day.year + (1 if day.month == 12 else 0)
    # Clamp to the month's length (31 Jan → 28/29 Feb).
    for candidate_day in (day.day, 30, 29, 28):
        try:
            return date(year, month, min(day.day, candidate_day))
        except ValueError:
            continue
    raise AssertionError("unreachable")


def check_quantity_change(new_quantity: int, committed: int) -> None:
    """A need's quantity may not drop below what donors already committed."""
    if new_quantity < committed:
        raise RuleViolation(
            409,
            "below_committed",
            f"quantity {new_quantity} is below the {committed} already committed",
            field="quantity",
            details={"committed": committed},
        )


def is_fulfilled(requested: int, delivered: int) -> bool:
    """A need is fulfilled once deliveries reach the requested quantity."""
    return requested > 0 and delivered >= requested
