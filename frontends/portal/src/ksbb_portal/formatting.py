"""Numbers, rupiah and dates the way Indonesian readers expect them; times in Asia/Jakarta (WIB)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

JAKARTA = ZoneInfo("Asia/Jakarta")

MONTHS = {
    "id": ("Januari", "Februari", "Maret", "April", "Mei", "Juni", "Juli", "Agustus", "September", "Oktober",
           "November", "Desember"),
    "en": ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"),
}


def number(value: Any, decimals: int = 0) -> str:
    """Digits grouped by dots, decimals after a comma: 1.234.567 and 12,5 (Indonesian convention); "–" for no
    number at all."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    negative = value < 0
    text = f"{abs(value):,.{decimals}f}"  # 1,234,567.89
    text = text.replace(",", "\u0000").replace(".", ",").replace("\u0000", ".")
    return f"-{text}" if negative else text


def rupiah(value: Any) -> str:
    """An amount in rupiah without decimals: Rp45.000."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return "–"
    return f"Rp{number(round(value))}"


def percent(part: int | float, whole: int | float) -> int:
    """A share as a whole percentage (0 when there is nothing to share), never above 100."""
    if not whole or whole <= 0:
        return 0
    return max(0, min(100, round(100 * part / whole)))


def to_jakarta(value: datetime | str | None) -> datetime | None:
    """A point in time on Jakarta's clock (naive values are taken as UTC, as the services send them)."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(JAKARTA)


def long_date(value: date | datetime | str | None, lang: str) -> str:
    """12 Mei 2025 / 12 May 2025 (a datetime is first moved to Jakarta's day)."""
    if value is None:
        return "–"
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00")) if "T" in value else date.fromisoformat(value)
    if isinstance(value, datetime):
        moved = to_jakarta(value)
        assert moved is not None
        value = moved.date()
    months = MONTHS["en" if lang == "en" else "id"]
    return f"{value.day} {months[value.month - 1]} {value.year}"


def date_time(value: datetime | str | None, lang: str) -> str:
    """12 Mei 2025 14.05 WIB / 12 May 2025, 14:05 WIB — always Jakarta time."""
    moved = to_jakarta(value)
    if moved is None:
        return "–"
    day = long_date(moved.date(), lang)
    if lang == "en":
        return f"{day}, {moved:%H:%M} WIB"
    return f"{day} {moved:%H.%M} WIB"


def iso_date(value: date | datetime | str | None) -> str:
    """The yyyy-mm-dd value a date input needs (Jakarta's day for a datetime)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value[:10]
    if isinstance(value, datetime):
        moved = to_jakarta(value)
        assert moved is not None
        return moved.date().isoformat()
    return value.isoformat()


def jakarta_today() -> date:
    """Today's date in Jakarta (what 'tomorrow' and 'planned date' mean to the people using the portal)."""
    return datetime.now(JAKARTA).date()
