"""Unit tests of the one mapping from broken rules to HTTP error responses (the API's error contract)."""

from __future__ import annotations

from typing import Any

import pytest
from ksbb_registry.api.errors import api_error
from ksbb_registry.domain import errors

pytestmark = pytest.mark.unit

#: error -> (status, body, headers) exactly as clients have received them.
CASES: list[tuple[errors.RuleBroken, int, dict[str, Any], dict[str, str] | None]] = [
    (
        errors.NotFound("recipient", "rcp_1"),
        404,
        {"code": "recipient_not_found", "message": "recipient rcp_1 does not exist", "field": "recipient_id"},
        None,
    ),
    (
        errors.NotFound("organisation", "org_1", message="org_1 does not exist", field="id"),
        404,
        {"code": "organisation_not_found", "message": "org_1 does not exist", "field": "id"},
        None,
    ),
    (errors.NotPermitted(), 403, {"code": "forbidden", "message": "you may not do this"}, None),
    (
        errors.ConcurrentChange("the resource is changing too often; try again"),
        409,
        {"code": "concurrent_update", "message": "the resource is changing too often; try again"},
        None,
    ),
    (
        errors.InvalidCursor(),
        422,
        {"code": "invalid_cursor", "message": "cursor is not valid", "field": "cursor"},
        None,
    ),
    (
        errors.UnknownAreaCode("unknown area code '99'", field="parent"),
        422,
        {"code": "unknown_area", "message": "unknown area code '99'", "field": "parent"},
        None,
    ),
    (
        errors.AreaNotFound("unknown area code '99'", field="code"),
        404,
        {"code": "unknown_area", "message": "unknown area code '99'", "field": "code"},
        None,
    ),
    (
        errors.AreaMismatch("kelurahan x lies in kota 31.71, not 31.75", field="kota_code"),
        422,
        {
            "code": "area_mismatch",
            "message": "kelurahan x lies in kota 31.71, not 31.75",
            "field": "kota_code",
        },
        None,
    ),
    (
        errors.OutsideJakarta(),
        422,
        {"code": "outside_jakarta", "message": "coordinates are outside DKI Jakarta", "field": "coordinates"},
        None,
    ),
    (
        errors.UnknownOrganisation("organisation does not exist", field="organisation_id"),
        422,
        {
            "code": "unknown_organisation",
            "message": "organisation does not exist",
            "field": "organisation_id",
        },
        None,
    ),
    (
        errors.OrganisationNotActive(),
        409,
        {
            "code": "organisation_suspended",
            "message": "the organisation is suspended",
            "field": "organisation_id",
        },
        None,
    ),
    (
        errors.OrganisationStatusUnchanged("suspended"),
        409,
        {"code": "illegal_transition", "message": "organisation is already suspended", "field": "status"},
        None,
    ),
    (
        errors.IllegalTransition("activate", "registered"),
        409,
        {
            "code": "illegal_transition",
            "message": "cannot activate a recipient that is registered",
            "field": "status",
            "details": {"from": "registered", "action": "activate"},
        },
        None,
    ),
    (
        errors.ReasonRequired("verify"),
        422,
        {"code": "reason_required", "message": "verify needs a note or reason", "field": "reason"},
        None,
    ),
    (
        errors.DescriptionRequired("item 'other' needs an item_description", field="item_description"),
        422,
        {
            "code": "description_required",
            "message": "item 'other' needs an item_description",
            "field": "item_description",
        },
        None,
    ),
    (
        errors.RwRequired(),
        422,
        {"code": "rw_required", "message": "an rw_rentan recipient needs its RW number", "field": "rw"},
        None,
    ),
    (
        errors.DuplicateRecipient("rcp_1", "RW 05 Gambir", field="rw"),
        409,
        {
            "code": "duplicate_recipient",
            "message": "this looks like recipient rcp_1 (RW 05 Gambir)",
            "field": "rw",
            "details": {"existing_recipient_id": "rcp_1"},
        },
        None,
    ),
    (
        errors.DuplicateRecipient("rcp_1", None, field="name"),
        409,
        {
            "code": "duplicate_recipient",
            "message": "this looks like recipient rcp_1",
            "field": "name",
            "details": {"existing_recipient_id": "rcp_1"},
        },
        None,
    ),
    (
        errors.RecipientIsArchived(),
        409,
        {"code": "recipient_archived", "message": "an archived recipient cannot change", "field": "status"},
        None,
    ),
    (
        errors.RecipientNotActive("verified"),
        409,
        {
            "code": "recipient_not_active",
            "message": "needs may only be posted for an active recipient (this one is verified)",
            "field": "recipient_id",
        },
        None,
    ),
    (
        errors.NeededByInPast(),
        422,
        {"code": "needed_by_in_past", "message": "needed_by lies in the past", "field": "needed_by"},
        None,
    ),
    (
        errors.NeededByTooFar(366),
        422,
        {
            "code": "needed_by_too_far",
            "message": "needed_by lies more than 366 days ahead",
            "field": "needed_by",
            "details": {"horizon_days": 366},
        },
        None,
    ),
    (
        errors.NeedNotOpen("fulfilled"),
        409,
        {"code": "need_not_open", "message": "the need is fulfilled", "field": "status"},
        None,
    ),
    (
        errors.BelowCommitted(4, 5),
        409,
        {
            "code": "below_committed",
            "message": "quantity 4 is below the 5 already committed",
            "field": "quantity",
            "details": {"committed": 5},
        },
        None,
    ),
    (
        errors.ReportAlreadyResolved(),
        409,
        {"code": "report_resolved", "message": "the report is already resolved", "field": "status"},
        None,
    ),
    (
        errors.ReportRateExceeded(1799),
        429,
        {"code": "rate_limited", "message": "too many reports from this address; try again later"},
        {"Retry-After": "1799"},
    ),
    (
        errors.RecipientNotVerified("registered"),
        409,
        {
            "code": "recipient_not_verified",
            "message": "recipient is registered; its contact person can be invited once it is verified",
            "field": "recipient_id",
        },
        None,
    ),
    (
        errors.AccountTaken(),
        409,
        {
            "code": "account_conflict",
            "message": "this e-mail already has an account tied to another organisation or unit",
            "field": "email",
        },
        None,
    ),
    (
        errors.InvitationRefused("the identity provider refused the e-mail", field="email"),
        422,
        {"code": "invitation_refused", "message": "the identity provider refused the e-mail", "field": "email"},
        None,
    ),
    (
        errors.IdentityProviderDown(30),
        503,
        {"code": "identity_provider_unavailable", "message": "the identity provider is unavailable; try again later"},
        {"Retry-After": "30"},
    ),
]


@pytest.mark.parametrize(
    ("error", "status", "body", "headers"), CASES, ids=[type(c[0]).__name__ for c in CASES]
)
def test_each_broken_rule_keeps_its_status_and_error_body(
    error: errors.RuleBroken, status: int, body: dict[str, Any], headers: dict[str, str] | None
) -> None:
    answer = api_error(error)
    assert answer.status == status
    assert answer.body.model_dump(exclude_none=True) == body
    assert answer.headers == headers


def _all_rule_errors(base: type[errors.RuleBroken]) -> set[type[errors.RuleBroken]]:
    found = set()
    for sub in base.__subclasses__():
        found |= {sub} | _all_rule_errors(sub)
    return found


def test_every_rule_error_has_a_response() -> None:
    assert _all_rule_errors(errors.RuleBroken) == {type(case[0]) for case in CASES}
