"""`zhucan import --claims FILE`: a county bureau's claim spreadsheet (CSV or XLSX, the template
below) to subsidy-claim.v1, with the department import's error report, progress and idempotence
(``connectors/importer.py``).

Each good row becomes a SubsidyClaim. Its ``claim_id`` is the 申请编号 column when the county
gives one, else derived from the row's content (an HMAC with the county's own key, as the
department import's event ids): a second import of the same rows is the same claims, which the
person stage decides once (CONTRACT rule 7). A whole file already imported is recognised by its
SHA-256 on the counties' own ledger (``zhucan.imports.county-bureau``) and nothing is sent again.
Bad rows go to the error report (row, field, reason, ID masked); good rows are published.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from connectors.importer import (
    ImportResult,
    RowError,
    RowReport,
    _parse_date,
    file_digest,
    import_key,
)
from connectors.kafka_io import make_producer, read_to_end
from schemas.codec import Codec
from streams.domain.enums import ClaimKind, Scheme
from streams.domain.ids import normalize_id
from streams.domain.regions import is_county_code
from streams.settings import Settings

COLUMNS: dict[str, tuple[str, ...]] = {
    "claim_id": ("申请编号", "claim_id"),
    "kind": ("申请类型", "kind"),
    "name": ("姓名", "name"),
    "id_number": ("身份证号", "公民身份号码", "id_number"),
    "insurance_year": ("参保年度", "insurance_year"),
    "enrolled_region_code": ("参保地区划代码", "enrolled_region_code"),
    "scheme": ("险种", "scheme"),
    "amount_paid": ("已缴金额(元)", "已缴金额", "amount_paid_yuan"),
    "paid_at": ("缴费日期", "paid_at"),
    "evidence": ("缴费凭证", "evidence"),
    "submitted_at": ("申请日期", "submitted_at"),
}
REQUIRED = ("kind", "name", "id_number", "insurance_year", "enrolled_region_code", "amount_paid", "paid_at",
            "evidence")
KINDS = {"异地参保": ClaimKind.CROSS_REGION_ENROLMENT, "职工医保": ClaimKind.EMPLOYEE_INSURANCE,
         "全额缴费": ClaimKind.PAID_IN_FULL, **{k.value: k for k in ClaimKind}}
SCHEMES = {"居民": Scheme.RESIDENT, "居民医保": Scheme.RESIDENT, "职工": Scheme.EMPLOYEE, "职工医保": Scheme.EMPLOYEE,
           **{s.value: s for s in Scheme}}
TEMPLATE = ("申请编号,申请类型,姓名,身份证号,参保年度,参保地区划代码,险种,已缴金额(元),缴费日期,缴费凭证,申请日期\n"
            "410102-2025-0001,异地参保,张三,11010519491231002X,2025,440106,居民,400.00,2024-12-01,粤税-889,2025-03-01\n")


def _header(cells: list[Any]) -> dict[str, int]:
    names = [str(h or "").strip() for h in cells]
    index = {col: names.index(name) for col, accepted in COLUMNS.items() for name in accepted if name in names}
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        raise ValueError("the header lacks required columns: " + ", ".join(f"{COLUMNS[c][0]} ({c})" for c in missing)
                         + "; see `zhucan import --claims --template`")
    return index


def _fen(text: str) -> int:
    try:
        value = Decimal(text.replace(",", "").replace("元", "").strip())
    except InvalidOperation:
        raise RowError("amount_paid", "NOT_AN_AMOUNT", f"amount {text!r} is not a number of yuan") from None
    if value < 0:
        raise RowError("amount_paid", "BAD_AMOUNT", f"amount {text!r} is negative")
    if value != value.quantize(Decimal("0.01")):
        raise RowError("amount_paid", "BAD_AMOUNT", f"amount {text!r} has more than two decimals (fen)")
    return int(value * 100)


def _at(value: Any, column: str) -> dt.datetime:
    try:
        day = _parse_date(value)
    except RowError:
        raise RowError(column, "DATE_INVALID", f"{column} {str(value or '')!r} is not a date (YYYY-MM-DD)") from None
    return dt.datetime.combine(day, dt.time(12), tzinfo=dt.UTC)


def row_to_claim(cells: list[Any], index: dict[str, int], key: bytes, today: dt.datetime) -> dict[str, Any]:
    """The SubsidyClaim of a row; RowError naming the field when it is not one."""
    def cell(column: str) -> str:
        i = index.get(column)
        value = cells[i] if i is not None and i < len(cells) else None
        return str(value if value is not None else "").strip()

    kind = KINDS.get(cell("kind"))
    if kind is None:
        raise RowError("kind", "UNKNOWN_KIND", f"kind {cell('kind')!r} is not 异地参保/职工医保/全额缴费 or a symbol")
    id18, problem = normalize_id(cell("id_number"))
    if id18 is None:
        raise RowError("id_number", problem.reason.value if problem else "ID_FORMAT",
                       problem.detail if problem else "not an ID number")
    if not cell("name"):
        raise RowError("name", "MISSING_FIELD", "name is empty")
    try:
        year = int(cell("insurance_year").split(".")[0])
    except ValueError:
        raise RowError("insurance_year", "NOT_A_YEAR", f"insurance_year {cell('insurance_year')!r}") from None
    region = cell("enrolled_region_code").split(".")[0]
    if not is_county_code(region):
        raise RowError("enrolled_region_code", "UNKNOWN_REGION", f"region {region!r} is not a county code")
    default_scheme = Scheme.EMPLOYEE if kind is ClaimKind.EMPLOYEE_INSURANCE else Scheme.RESIDENT
    scheme = SCHEMES.get(cell("scheme")) if cell("scheme") else default_scheme
    if scheme is None:
        raise RowError("scheme", "UNKNOWN_SCHEME", f"scheme {cell('scheme')!r} is not 居民/职工")
    claim = {"kind": kind.value, "id_number": id18, "name": cell("name"), "insurance_year": year,
             "enrolled_region_code": region, "scheme": scheme.value, "amount_paid_fen": _fen(cell("amount_paid")),
             "paid_at": _at(cell("paid_at"), "paid_at"), "evidence": cell("evidence"),
             "submitted_at": _at(cell("submitted_at"), "submitted_at") if cell("submitted_at") else today}
    given = cell("claim_id")
    if given:
        claim["claim_id"] = given
    else:
        parts = "|".join(str(claim[k]) for k in ("kind", "id_number", "insurance_year", "enrolled_region_code",
                                                  "amount_paid_fen", "evidence")).encode()
        digest = hmac.new(key, parts, hashlib.sha256).hexdigest() if key else hashlib.sha256(parts).hexdigest()
        claim["claim_id"] = "clm-" + digest[:32]
    return claim


def run_claims_import(settings: Settings, path: Path, *, report: Path | None = None, force: bool = False,
                      quiet: bool = False) -> ImportResult:
    result = ImportResult()
    ledger_topic = settings.topics.claim_imports
    ledger_key = f"claims:{file_digest(path)}"
    if not force and ledger_key in {r.key.decode() for r in read_to_end(settings.kafka_bootstrap_servers,
                                                                          ledger_topic) if r.key}:
        result.already_imported = True
        return result
    producer = make_producer(settings.kafka_bootstrap_servers, linger_ms=20)
    codec, topic, key = Codec(), settings.topics.claims, import_key(settings)
    today = dt.datetime.now(dt.UTC).replace(microsecond=0)
    rows = RowReport(path, report or path.with_name(path.name + ".errors.csv"), _header, result, quiet)
    try:
        for n, cells, index, raw_id in rows.rows():
            try:
                claim = row_to_claim(cells, index, key, today)
            except RowError as exc:
                rows.bad(n, [(exc.field, exc.reason, exc.detail)], raw_id)
                continue
            producer.send(topic, key=claim["claim_id"].encode(), value=codec.encode("SubsidyClaim", claim, topic=topic))
            result.published += 1
        producer.flush()
        producer.send(ledger_topic, key=ledger_key.encode(), value=json.dumps({
            "file": path.name, "rows": result.rows, "published": result.published, "bad_rows": result.bad_rows,
            "at": dt.datetime.now(dt.UTC).isoformat()}, ensure_ascii=False).encode())
        producer.flush()
    finally:
        producer.close()
    rows.done()
    return result
