import datetime as dt

from streams.domain.enums import RejectionReason
from streams.domain.identity import Identity, Invalid, validate_identity
from tests.fixtures import event, new_id


def test_valid_event_becomes_an_identity_with_normalised_id():
    raw = event(new_id(), "MINIMUM_LIVING")
    raw["id_number"] = raw["id_number"].lower()
    result = validate_identity(raw)
    assert isinstance(result, Identity)
    assert result.id_number == raw["id_number"].upper()


def test_every_problem_is_reported_at_once():
    raw = event(new_id(), "EXTREME_POVERTY", source="RURAL_REVITALIZATION")
    raw["id_number"] = raw["id_number"][:17] + ("1" if raw["id_number"][17] != "1" else "2")
    raw["region_code"] = "41AB02"
    raw["name"] = " "
    result = validate_identity(raw)
    assert isinstance(result, Invalid)
    assert set(result.reasons) == {
        RejectionReason.ID_CHECKSUM, RejectionReason.CATEGORY_NOT_OF_SOURCE,
        RejectionReason.UNKNOWN_REGION, RejectionReason.MISSING_FIELD,
    }
    assert "region_code" in result.detail and "name is empty" in result.detail


def test_full_id_never_appears_in_the_detail():
    idn = new_id()
    raw = event(idn, "MINIMUM_LIVING")
    raw["id_number"] = idn[:17] + ("1" if idn[17] != "1" else "2")
    result = validate_identity(raw)
    assert isinstance(result, Invalid)
    assert raw["id_number"] not in result.detail


def test_province_code_is_not_a_county():
    raw = event(new_id(), "MINIMUM_LIVING", region="410000")
    result = validate_identity(raw)
    assert isinstance(result, Invalid) and result.reasons == (RejectionReason.UNKNOWN_REGION,)


def test_dates_before_birth_or_far_ahead_are_invalid():
    idn = new_id(born=dt.date(1990, 1, 1))
    before_birth = event(idn, "MINIMUM_LIVING", effective=dt.date(1985, 1, 1),
                         occurred=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    ahead = event(idn, "MINIMUM_LIVING", effective=dt.date(2030, 1, 1),
                  occurred=dt.datetime(2024, 1, 1, tzinfo=dt.UTC))
    for raw in (before_birth, ahead):
        result = validate_identity(raw)
        assert isinstance(result, Invalid) and result.reasons == (RejectionReason.DATE_INVALID,)
