"""A county's claim file, row by row (connectors/claims_import.py): each good row a SubsidyClaim
with a stable id, each bad one a typed error naming its field."""

from __future__ import annotations

import datetime as dt

import pytest

from connectors.claims_import import COLUMNS, TEMPLATE, _header, row_to_claim
from connectors.importer import RowError
from tests.fixtures import new_id

TODAY = dt.datetime(2025, 3, 2, tzinfo=dt.UTC)
HEADER = TEMPLATE.splitlines()[0].split(",")


def row(**cells: str) -> list[str]:
    base = dict(zip(HEADER, TEMPLATE.splitlines()[1].split(","), strict=True))
    base["身份证号"] = cells.pop("id_number", new_id())
    for name, value in cells.items():
        base[COLUMNS[name][0]] = value
    return [base[h] for h in HEADER]


def test_the_template_row_is_a_claim_in_fen_with_the_countys_id():
    claim = row_to_claim(row(), _header(HEADER), b"k", TODAY)
    assert (claim["claim_id"], claim["kind"], claim["scheme"], claim["amount_paid_fen"], claim["insurance_year"]) == (
        "410102-2025-0001", "CROSS_REGION_ENROLMENT", "RESIDENT", 40000, 2025)
    assert claim["submitted_at"].date() == dt.date(2025, 3, 1)


def test_without_a_claim_id_the_same_row_gives_the_same_id_and_another_county_key_another():
    idn = new_id()
    cells = row(id_number=idn, claim_id="")
    first, again = (row_to_claim(cells, _header(HEADER), b"k", TODAY)["claim_id"] for _ in range(2))
    assert first == again and first.startswith("clm-")
    assert row_to_claim(cells, _header(HEADER), b"other", TODAY)["claim_id"] != first


@pytest.mark.parametrize(("cells", "field", "reason"), [
    ({"kind": "补贴"}, "kind", "UNKNOWN_KIND"),
    ({"id_number": "41010219700101001"}, "id_number", "ID_FORMAT"),
    ({"amount_paid": "-1"}, "amount_paid", "BAD_AMOUNT"),
    ({"amount_paid": "12.345"}, "amount_paid", "BAD_AMOUNT"),
    ({"amount_paid": "四百"}, "amount_paid", "NOT_AN_AMOUNT"),
    ({"enrolled_region_code": "999999"}, "enrolled_region_code", "UNKNOWN_REGION"),
    ({"paid_at": "yesterday"}, "paid_at", "DATE_INVALID"),
    ({"scheme": "商业"}, "scheme", "UNKNOWN_SCHEME"),
])
def test_a_bad_row_is_a_typed_error_naming_its_field(cells, field, reason):
    with pytest.raises(RowError) as err:
        row_to_claim(row(**cells), _header(HEADER), b"k", TODAY)
    assert (err.value.field, err.value.reason) == (field, reason)


def test_a_header_without_a_required_column_says_which():
    with pytest.raises(ValueError, match="缴费凭证"):
        _header([h for h in HEADER if h != "缴费凭证"])
