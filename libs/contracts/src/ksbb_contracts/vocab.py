"""Shared vocabulary: enumerations used in events and APIs of several services."""

from __future__ import annotations

from enum import StrEnum


class RecipientKind(StrEnum):
    """Kinds of recipient units."""

    RW_RENTAN = "rw_rentan"
    PANTI_ASUHAN = "panti_asuhan"
    PANTI_LANSIA = "panti_lansia"
    PANTI_DISABILITAS = "panti_disabilitas"
    PESANTREN = "pesantren"
    LAINNYA = "lainnya"


class RecipientStatus(StrEnum):
    """Recipient lifecycle states."""

    REGISTERED = "registered"
    VERIFIED = "verified"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    ARCHIVED = "archived"


class OrganisationKind(StrEnum):
    """Kinds of facilitator organisations."""

    NGO = "ngo"
    ZAKAT = "zakat"
    RED_CROSS = "red_cross"
    FAITH_BASED = "faith_based"
    COMMUNITY = "community"
    GOVERNMENT = "government"
    OTHER = "other"


class OrganisationStatus(StrEnum):
    """Facilitator organisation states."""

    ACTIVE = "active"
    SUSPENDED = "suspended"


class Item(StrEnum):
    """Catalogue of aid items."""

    SEMBAKO = "sembako"
    READY_MEALS = "ready_meals"
    EID_PACKAGE = "eid_package"
    MASKS = "masks"
    HAND_SANITIZER = "hand_sanitizer"
    BABY_MILK = "baby_milk"
    HYGIENE_KIT = "hygiene_kit"
    MEDICINE = "medicine"
    OTHER = "other"


class Priority(StrEnum):
    """Need priority."""

    HIGH = "high"
    MEDIUM = "medium"
    LOW = "low"


class Recurrence(StrEnum):
    """How often a need recurs; each period is its own need."""

    NONE = "none"
    WEEKLY = "weekly"
    MONTHLY = "monthly"


class NeedStatus(StrEnum):
    """Need states."""

    OPEN = "open"
    FULFILLED = "fulfilled"
    CLOSED = "closed"
    CANCELLED = "cancelled"


class PledgeStatus(StrEnum):
    """Pledge lifecycle states."""

    PLEDGED = "pledged"
    CONFIRMED = "confirmed"
    DISPATCHED = "dispatched"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    REJECTED = "rejected"
    EXPIRED = "expired"


class DeliveryMode(StrEnum):
    """Who carries the goods."""

    OWN_DELIVERY = "own_delivery"
    DISTRIBUTION_PARTNER = "distribution_partner"


class DonorKind(StrEnum):
    """Kinds of donors (kolaborator)."""

    PERSON = "person"
    COMPANY = "company"
    COMMUNITY = "community"
    MOSQUE = "mosque"
    CHURCH = "church"
    OTHER_ORGANISATION = "other_organisation"
