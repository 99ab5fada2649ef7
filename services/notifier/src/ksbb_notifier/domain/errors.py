"""Rule violations of the notifier, named after the rule; the API maps each to a response in one place."""

from __future__ import annotations


class NotifierError(Exception):
    """A request a notifier rule refuses."""


class EndpointNotFound(NotifierError):
    """No such endpoint, or one the caller may not manage (others' endpoints stay hidden)."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__(f"no webhook endpoint {endpoint_id}")
        self.endpoint_id = endpoint_id


class ForeignOrganisation(NotifierError):
    """A facilitator tried to manage another organisation's endpoints."""

    def __init__(self, organisation_id: str | None) -> None:
        super().__init__("facilitators manage only their own organisation's endpoints")
        self.organisation_id = organisation_id


class EndpointDisabled(NotifierError):
    """The action needs an enabled endpoint."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__("the endpoint is disabled; enable it first")
        self.endpoint_id = endpoint_id


class FieldMayNotBeNull(NotifierError):
    """A change sets a field to null that must always have a value."""

    def __init__(self, field: str) -> None:
        super().__init__(f"{field} may not be null")
        self.field = field


class EndpointChangedMeanwhile(NotifierError):
    """An update lost a race: the endpoint has a newer version than the one the change was based on."""

    def __init__(self, endpoint_id: str, version: int) -> None:
        super().__init__("the endpoint changed meanwhile; fetch it again")
        self.endpoint_id = endpoint_id
        self.version = version


class RotationCollided(NotifierError):
    """A secret rotation lost a race with another change of the same endpoint."""

    def __init__(self, endpoint_id: str) -> None:
        super().__init__("the endpoint changed meanwhile; try again")
        self.endpoint_id = endpoint_id


class DeliveryNotFound(NotifierError):
    """No such delivery of this endpoint."""

    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"no delivery {delivery_id}")
        self.delivery_id = delivery_id


class UrlRefused(NotifierError, ValueError):
    """A webhook URL that may never be used (scheme, host, credentials)."""


class AddressRefused(NotifierError):
    """The destination resolved to an address webhooks may not reach."""


class ContactUnknown(NotifierError):
    """The addressee's contact has not arrived (yet), so the e-mail waits."""
