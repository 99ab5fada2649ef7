"""The aid item catalogue with KSBB's reference packages, and needs suggested from beneficiary counts."""

from __future__ import annotations

import math
from dataclasses import dataclass

from ksbb_contracts.vocab import Item, Priority, RecipientKind, Recurrence

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


def default_unit(item: Item) -> str:
    """The catalogue unit of an item."""
    return next(entry.unit for entry in CATALOGUE if entry.item is item)


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
