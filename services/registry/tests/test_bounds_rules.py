"""Unit tests of the registry's input bounds: the needed-by horizon and the beneficiary sub-count rule."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from ksbb_contracts import limits
from ksbb_registry.api.schemas import BeneficiaryCounts, NeedCreate
from ksbb_registry.domain.errors import NeededByInPast, NeededByTooFar
from ksbb_registry.domain.needs import check_needed_by
from pydantic import ValidationError

pytestmark = pytest.mark.unit

TODAY = date(2026, 3, 2)


@given(offset=st.integers(min_value=-3 * 366, max_value=3 * 366))
def test_needed_by_is_accepted_exactly_from_today_to_the_horizon(offset: int) -> None:
    needed_by = TODAY + timedelta(days=offset)
    if offset < 0:
        with pytest.raises(NeededByInPast):
            check_needed_by(needed_by, TODAY)
    elif offset > limits.HORIZON_DAYS:
        with pytest.raises(NeededByTooFar) as refused:
            check_needed_by(needed_by, TODAY)
        assert refused.value.field == "needed_by" and refused.value.horizon_days == limits.HORIZON_DAYS
    else:
        check_needed_by(needed_by, TODAY)


def test_the_last_day_of_the_calendar_is_refused_not_overflowed() -> None:
    with pytest.raises(NeededByTooFar):
        check_needed_by(date.max, TODAY)


@given(
    people=st.integers(min_value=0, max_value=limits.PEOPLE_MAX),
    group=st.integers(min_value=0, max_value=limits.PEOPLE_MAX),
)
def test_a_group_of_beneficiaries_never_exceeds_the_people_counted(people: int, group: int) -> None:
    counts = {"households": 1, "people": people, "children": group}
    if group > people:
        with pytest.raises(ValidationError):
            BeneficiaryCounts.model_validate(counts)
    else:
        assert BeneficiaryCounts.model_validate(counts).children == group


@pytest.mark.parametrize("value", ["5", True, 5.5, "five"])
def test_need_quantity_takes_json_numbers_only(value: object) -> None:
    with pytest.raises(ValidationError) as refused:
        NeedCreate.model_validate({"item": "sembako", "quantity": value, "needed_by": "2026-03-05"})
    assert refused.value.errors()[0]["loc"] == ("quantity",)
