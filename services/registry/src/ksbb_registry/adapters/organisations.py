"""MongoDB store of facilitator organisations."""

from __future__ import annotations

from ksbb_registry.adapters.store import AggregateCollection, Documents
from ksbb_registry.domain.organisations import Organisation

#: How organisations are stored (collection `organisations`, id as `_id`).
ORGANISATION_DOCUMENTS = Documents(Organisation, "organisation_id")


class OrganisationCollection(AggregateCollection[Organisation]):
    """The `organisations` collection."""
