"""The duplicate-recipient rule: two live recipients may not share a normalised name + street address, nor
(for RW-level units) a kelurahan + RW. Each such key is claimed once; the claim ids are computed here."""

from __future__ import annotations

import re
import unicodedata

from ksbb_contracts.vocab import RecipientKind

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

#: Prefixes of claim ids: one namespace per kind of duplicate key.
NAME_CLAIM = "name:"
RW_CLAIM = "rw:"


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


def claim_keys(identity: str | None, rw_unit: str | None) -> list[str]:
    """Claim ids (unique among all claims) of a recipient with these duplicate keys, in claiming order."""
    keys = [NAME_CLAIM + identity] if identity else []
    if rw_unit:
        keys.append(RW_CLAIM + rw_unit)
    return keys


def is_rw_claim(claim_id: str) -> bool:
    """Whether a claim id is an RW key (else a name + address key)."""
    return claim_id.startswith(RW_CLAIM)


def claim_field(claim_id: str) -> str:
    """The request field a duplicate on this claim id is reported against."""
    return "rw" if is_rw_claim(claim_id) else "name"


def key_moves(old_keys: list[str], new_keys: list[str]) -> tuple[list[str], list[str]]:
    """When a recipient's keys change: the keys to claim (new ones) and to release (old ones), in order."""
    return [k for k in new_keys if k not in old_keys], [k for k in old_keys if k not in new_keys]
