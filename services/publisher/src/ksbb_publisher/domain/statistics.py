"""Programme statistics: recipients, households targeted and reached, packages and donors per dimension."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

#: The province every figure rolls up to.
PROVINCE = ("31", "Daerah Khusus Ibukota Jakarta")
DIMENSIONS = ("kota", "kecamatan", "kelurahan", "kind")


def _empty_row(code: str, name: str | None) -> dict[str, Any]:
    return {
        "code": code,
        "name": name,
        "recipients": 0,
        "households_targeted": 0,
        "households_reached": 0,
        "packages_delivered": 0,
        "donors": set(),
    }


def programme_statistics(
    recipients: Iterable[Mapping[str, Any]],
    delivered: Mapping[str, int],
    live_pledges: Iterable[tuple[str, str, str]],
    items: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """Figures per kota, kecamatan, kelurahan, recipient kind and item, and the province totals.

    `recipients` are the counted recipient documents, `delivered` packages per recipient, `live_pledges`
    (recipient, donor, item) of every live pledge, `items` per item: needs, requested and delivered sums.
    A recipient's households count as reached once anything was delivered to it; a donor counts once
    per row however many pledges it made.
    """
    donors_of: dict[str, set[str]] = {}
    donors_by_item: dict[str, set[str]] = {}
    all_donors: set[str] = set()
    for recipient_id, donor_id, item in live_pledges:
        donors_of.setdefault(recipient_id, set()).add(donor_id)
        donors_by_item.setdefault(item, set()).add(donor_id)
        all_donors.add(donor_id)
    dims: dict[str, dict[str, dict[str, Any]]] = {dim: {} for dim in DIMENSIONS}
    total = _empty_row(*PROVINCE)
    for r in recipients:
        households = (r.get("beneficiaries") or {}).get("households", 0)
        got = delivered.get(r["_id"], 0)
        keys = {
            "kota": (r.get("kota_code"), r.get("kota_name")),
            "kecamatan": (r.get("kecamatan_code"), r.get("kecamatan_name")),
            "kelurahan": (r.get("kelurahan_code"), r.get("kelurahan_name")),
            "kind": (r["kind"], None),
        }
        for dim, (code, name) in keys.items():
            row = dims[dim].setdefault(str(code), _empty_row(str(code), name))
            # Every recipient lies in exactly one kota, so the kota rows add up to the totals.
            for target in (row, total) if dim == "kota" else (row,):
                target["recipients"] += 1
                target["households_targeted"] += households
                target["households_reached"] += households if got > 0 else 0
                target["packages_delivered"] += got
                target["donors"] |= donors_of.get(r["_id"], set())
    by_item = sorted(
        (
            {
                "code": row["_id"],
                "needs": row["needs"],
                "requested": row["requested"],
                "packages_delivered": row["delivered"],
                "donors": len(donors_by_item.get(row["_id"], set())),
            }
            for row in items
        ),
        key=lambda x: x["code"],
    )

    def finish(rows: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
        return [{**row, "donors": len(row["donors"])} for _, row in sorted(rows.items())]

    return {
        "totals": {**total, "donors": len(all_donors)},
        "by_kota": finish(dims["kota"]),
        "by_kecamatan": finish(dims["kecamatan"]),
        "by_kelurahan": finish(dims["kelurahan"]),
        "by_kind": finish(dims["kind"]),
        "by_item": by_item,
    }
