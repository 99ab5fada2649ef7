"""Errors of the registry's rules: each names the rule that was broken, never an HTTP status.

The API maps them to status codes and error bodies in one place (`api/errors.py`).
"""

from __future__ import annotations


class RuleBroken(Exception):
    """A request breaks a registry rule; `field` names the input the rule concerns (if any)."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class NotFound(RuleBroken):
    """The named resource does not exist."""

    def __init__(
        self, resource: str, resource_id: str, *, message: str | None = None, field: str | None = None
    ) -> None:
        super().__init__(
            message or f"{resource} {resource_id} does not exist",
            field=field if field is not None else f"{resource}_id",
        )
        self.resource = resource
        self.resource_id = resource_id


class NotPermitted(RuleBroken):
    """The caller may not do this to this resource."""

    def __init__(self, message: str = "you may not do this") -> None:
        super().__init__(message)


class ConcurrentChange(RuleBroken):
    """The resource kept changing while the decision was made; the caller may retry."""


class InvalidCursor(RuleBroken):
    """A list cursor that this service did not issue."""

    def __init__(self) -> None:
        super().__init__("cursor is not valid", field="cursor")


# -- areas -------------------------------------------------------------------------------------


class UnknownAreaCode(RuleBroken):
    """A code given as input is not a DKI Jakarta area."""


class AreaNotFound(RuleBroken):
    """A looked-up area does not exist."""


class AreaMismatch(RuleBroken):
    """A kecamatan or kota code does not contain the given kelurahan."""


class OutsideJakarta(RuleBroken):
    """Coordinates lie outside DKI Jakarta."""

    def __init__(self) -> None:
        super().__init__("coordinates are outside DKI Jakarta", field="coordinates")


# -- organisations -----------------------------------------------------------------------------


class UnknownOrganisation(RuleBroken):
    """A recipient names an organisation that does not exist."""


class OrganisationNotActive(RuleBroken):
    """Only an active organisation may register recipients."""

    def __init__(self) -> None:
        super().__init__("the organisation is suspended", field="organisation_id")


class OrganisationStatusUnchanged(RuleBroken):
    """An organisation cannot be moved to the status it already has."""

    def __init__(self, status: str) -> None:
        super().__init__(f"organisation is already {status}", field="status")
        self.status = status


# -- recipients --------------------------------------------------------------------------------


class IllegalTransition(RuleBroken):
    """The lifecycle table has no such step from the recipient's current status."""

    def __init__(self, action: str, current: str) -> None:
        super().__init__(f"cannot {action} a recipient that is {current}", field="status")
        self.action = action
        self.current = current


class ReasonRequired(RuleBroken):
    """This lifecycle step needs a note or reason."""

    def __init__(self, action: str) -> None:
        super().__init__(f"{action} needs a note or reason", field="reason")
        self.action = action


class DescriptionRequired(RuleBroken):
    """A catch-all kind or item ('lainnya', 'other') needs a description."""


class RwRequired(RuleBroken):
    """An RW-level recipient needs its RW number."""

    def __init__(self) -> None:
        super().__init__("an rw_rentan recipient needs its RW number", field="rw")


class DuplicateRecipient(RuleBroken):
    """Another live recipient already holds this unit's duplicate key (same name + address, or same RW)."""

    def __init__(self, existing_recipient_id: str, existing_name: str | None, *, field: str) -> None:
        named = f" ({existing_name})" if existing_name else ""
        super().__init__(f"this looks like recipient {existing_recipient_id}{named}", field=field)
        self.existing_recipient_id = existing_recipient_id


class RecipientIsArchived(RuleBroken):
    """Archiving is final: an archived recipient does not change any more."""

    def __init__(self) -> None:
        super().__init__("an archived recipient cannot change", field="status")


# -- needs -------------------------------------------------------------------------------------


class RecipientNotActive(RuleBroken):
    """Needs may only be posted for an active recipient."""

    def __init__(self, status: str) -> None:
        super().__init__(
            f"needs may only be posted for an active recipient (this one is {status})", field="recipient_id"
        )
        self.status = status


class NeededByInPast(RuleBroken):
    """A need's needed-by date may not lie in the past."""

    def __init__(self) -> None:
        super().__init__("needed_by lies in the past", field="needed_by")


class NeededByTooFar(RuleBroken):
    """A need's needed-by date lies within the programme's horizon."""

    def __init__(self, horizon_days: int) -> None:
        super().__init__(f"needed_by lies more than {horizon_days} days ahead", field="needed_by")
        self.horizon_days = horizon_days


class NeedNotOpen(RuleBroken):
    """Only an open need may change or be cancelled."""

    def __init__(self, status: str) -> None:
        super().__init__(f"the need is {status}", field="status")
        self.status = status


class BelowCommitted(RuleBroken):
    """A need's quantity may not drop below what donors already committed."""

    def __init__(self, quantity: int, committed: int) -> None:
        super().__init__(f"quantity {quantity} is below the {committed} already committed", field="quantity")
        self.quantity = quantity
        self.committed = committed


# -- reports -----------------------------------------------------------------------------------


class ReportAlreadyResolved(RuleBroken):
    """A concern report is resolved once."""

    def __init__(self) -> None:
        super().__init__("the report is already resolved", field="status")


class ReportRateExceeded(RuleBroken):
    """Too many reports from one address in the current window; `retry_after` seconds until it ends."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("too many reports from this address; try again later")
        self.retry_after = retry_after


# -- members and accounts (onboarding) ---------------------------------------------------------


class RecipientNotVerified(RuleBroken):
    """A recipient unit's contact person is invited only once the unit is verified (or active)."""

    def __init__(self, status: str) -> None:
        super().__init__(f"recipient is {status}; its contact person can be invited once it is verified",
                         field="recipient_id")
        self.status = status


class AccountTaken(RuleBroken):
    """The e-mail already has an account tied to another organisation or recipient unit."""

    def __init__(self) -> None:
        super().__init__("this e-mail already has an account tied to another organisation or unit",
                         field="email")


class InvitationRefused(RuleBroken):
    """The identity provider refused the invitation's data (e.g. a malformed e-mail)."""


class IdentityProviderDown(RuleBroken):
    """The identity provider cannot be reached now; retrying later is safe (invitations are idempotent)."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("the identity provider is unavailable; try again later")
        self.retry_after = retry_after
