"""`zhucan import`: a department's spreadsheet (CSV or XLSX, the documented template) to its identity topic.

Rows stream from the file (CSV through ``csv.reader``, XLSX through openpyxl's
read-only mode), so a million-row file never sits in memory. Each good row becomes an
IdentityEvent whose ``event_id`` derives from the row's content, so the broker treats
a second import of the same rows as redeliveries; a whole file already imported is
recognised by its SHA-256 on the department's own ledger (``zhucan.imports.<slug>``, which only
that department writes) and nothing is published again.
Bad rows go to an error report (row number, field, reason, ID masked); good rows
are published.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import json
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors.kafka_io import make_producer, read_to_end
from schemas.codec import Codec
from streams.domain.departments import Department
from streams.domain.enums import CATEGORY_BY_ZH, Category, RejectionReason
from streams.domain.identity import Invalid, validate_identity
from streams.domain.ids import mask_id, scrub
from streams.kafka.security import ClientSecurity
from streams.settings import Settings

# column -> accepted headers (Chinese first, as in the department template)
COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("姓名", "name"),
    "id_number": ("身份证号", "公民身份号码", "id_number"),
    "category": ("身份类别", "类别", "category"),
    "region_code": ("认定地区划代码", "地区代码", "region_code"),
    "effective_date": ("生效日期", "effective_date"),
    "change": ("变动类型", "变动", "change"),
    "is_student": ("学生儿童", "is_student"),
}
REQUIRED = ("name", "id_number", "category", "region_code", "effective_date")
CHANGES = {"认定": "CERTIFIED", "新增": "CERTIFIED", "变更": "UPDATED", "退出": "REVOKED", "撤销": "REVOKED",
           "死亡": "DECEASED", "核减": "DECEASED", "": "CERTIFIED"}
TEMPLATE = "姓名,身份证号,身份类别,认定地区划代码,生效日期,变动类型,学生儿童\n张三,11010519491231002X,低保对象,410102,2024-06-01,认定,否\n"
REASON_FIELD = {
    RejectionReason.ID_FORMAT: "id_number", RejectionReason.ID_CHECKSUM: "id_number",
    RejectionReason.CATEGORY_NOT_OF_SOURCE: "category", RejectionReason.UNKNOWN_REGION: "region_code",
    RejectionReason.DATE_INVALID: "effective_date", RejectionReason.MISSING_FIELD: "(row)",
}


class RowError(Exception):
    def __init__(self, field: str, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.field, self.reason, self.detail = field, reason, detail


@dataclass
class ImportResult:
    rows: int = 0
    published: int = 0
    bad_rows: int = 0
    errors: int = 0
    already_imported: bool = False
    report: Path | None = None
    seconds: float = 0.0
    by_reason: dict[str, int] = field(default_factory=dict)


def _parse_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    text = str(value or "").strip()
    for fmt in ("%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y.%m.%d"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise RowError("effective_date", "DATE_INVALID", f"effective_date {text!r} is not a date (YYYY-MM-DD)")


def _parse_category(value: Any) -> Category:
    text = str(value or "").strip()
    if text in Category.__members__:
        return Category(text)
    if text in CATEGORY_BY_ZH:
        return CATEGORY_BY_ZH[text]
    raise RowError("category", "UNKNOWN_CATEGORY", f"category {text!r} is neither a symbol nor a known Chinese name")


def _parse_change(value: Any) -> str:
    text = str(value or "").strip()
    if text.upper() in ("CERTIFIED", "UPDATED", "REVOKED", "DECEASED"):
        return text.upper()
    if text in CHANGES:
        return CHANGES[text]
    raise RowError("change", "UNKNOWN_CHANGE", f"change {text!r} is not 认定/变更/退出/死亡 or an enum symbol")


def _parse_bool(value: Any) -> bool:
    text = str(value if value is not None else "").strip().lower()
    if text in ("", "否", "false", "0", "no", "n"):
        return False
    if text in ("是", "true", "1", "yes", "y"):
        return True
    raise RowError("is_student", "NOT_A_BOOLEAN", f"is_student {text!r} is not 是/否")


def _header_map(header: list[Any]) -> dict[str, int]:
    index = {}
    names = [str(h or "").strip() for h in header]
    for column, accepted in COLUMNS.items():
        for i, name in enumerate(names):
            if name in accepted:
                index[column] = i
                break
    missing = [c for c in REQUIRED if c not in index]
    if missing:
        wanted = ", ".join(f"{COLUMNS[c][0]} ({c})" for c in missing)
        raise ValueError(f"the header lacks required columns: {wanted}; see `zhucan import --template`")
    return index


class _CountingReader(io.RawIOBase):
    """Counts bytes read, for progress through a CSV file."""

    def __init__(self, raw: io.BufferedReader) -> None:
        self.raw, self.count = raw, 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = self.raw.readinto(b)
        self.count += n or 0
        return n or 0


def iter_rows(path: Path, progress: dict[str, float]) -> Iterator[tuple[int, list[Any]]]:
    """(row number as a person sees it, cells) after the header; streaming."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        try:
            ws = wb.worksheets[0]
            progress["total"] = float(ws.max_row or 0)
            for n, row in enumerate(ws.iter_rows(values_only=True), start=1):
                progress["done"] = float(n)
                yield n, list(row)
        finally:
            wb.close()
        return
    progress["total"] = float(path.stat().st_size)
    with open(path, "rb") as raw:
        counter = _CountingReader(raw)  # type: ignore[arg-type]
        text = io.TextIOWrapper(io.BufferedReader(counter), encoding="utf-8-sig", newline="")
        for n, row in enumerate(csv.reader(text), start=1):
            progress["done"] = float(counter.count)
            yield n, row


def file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def event_id_for(source: str, ev: dict[str, Any], key: bytes = b"") -> str:
    """Derived from the row's content: the same row imported twice is the same event. With
    ``key`` (the department's own secret: ``import_key``) an HMAC, so that no other department
    can compute the id of a row (issue #20); without one (a development broker) a plain hash."""
    parts = "|".join([source, ev["id_number"].upper(), ev["name"], ev["category"], ev["region_code"],
                      ev["effective_date"].isoformat(), ev["change"], str(ev["is_student"])]).encode()
    digest = hmac.new(key, parts, hashlib.sha256).hexdigest() if key else hashlib.sha256(parts).hexdigest()
    return "imp-" + digest[:32]


def import_key(settings: Settings) -> bytes:
    """The department's key for its import ids: ``ZHUCAN_IMPORT_KEY`` if set, else the password
    it signs in with (only it holds that); none on an unsecured development broker."""
    explicit = os.environ.get("ZHUCAN_IMPORT_KEY", "")
    if explicit:
        return explicit.encode("utf-8")
    secret = ClientSecurity.from_env(bootstrap=settings.kafka_bootstrap_servers).password
    password = secret.get_secret_value() if secret else None
    return (password or "").encode("utf-8")


def row_to_event(source: str, cells: list[Any], index: dict[str, int], occurred: dt.datetime,
                 key: bytes = b"") -> dict[str, Any]:
    def cell(column: str) -> Any:
        i = index.get(column)
        return cells[i] if i is not None and i < len(cells) else None

    ev = {
        "source": source, "name": str(cell("name") or "").strip(),
        "id_number": str(cell("id_number") or "").strip(), "category": _parse_category(cell("category")).value,
        "region_code": str(cell("region_code") or "").strip().split(".")[0],
        "effective_date": _parse_date(cell("effective_date")), "change": _parse_change(cell("change")),
        "is_student": _parse_bool(cell("is_student")), "occurred_at": occurred,
    }
    ev["event_id"] = event_id_for(source, ev, key)
    return ev


class RowReport:
    """One import's rows and its error report: the file's data rows after its header (blank
    lines skipped; ``result.rows`` counted), each bad row's problems written to the report
    (0600: it names rows of people; the ID masked, issue #20), and a progress line every second."""

    def __init__(self, path: Path, report: Path, header: Callable[[list[Any]], dict[str, int]],
                 result: ImportResult, quiet: bool) -> None:
        self.path, self.report, self.header, self.result, self.quiet = path, report, header, result, quiet
        self.progress = {"done": 0.0, "total": 0.0}
        self.started = time.monotonic()
        self._writer: Any = None

    def rows(self) -> Iterator[tuple[int, list[Any], dict[str, int], str]]:
        """(row number, cells, the header's column index, the raw ID number) of each data row."""
        self.report.touch(mode=0o600)
        self.report.chmod(0o600)
        last_print = 0.0
        with open(self.report, "w", encoding="utf-8-sig", newline="") as rf:
            self._writer = csv.writer(rf)
            self._writer.writerow(["row", "field", "reason", "detail", "id_number (masked)"])
            index: dict[str, int] | None = None
            for n, cells in iter_rows(self.path, self.progress):
                if index is None:
                    index = self.header(cells)
                    continue
                if not any(c not in (None, "") for c in cells):
                    continue  # blank line
                self.result.rows += 1
                yield n, cells, index, str(cells[index["id_number"]] if index["id_number"] < len(cells) else "")
                now = time.monotonic()
                if not self.quiet and now - last_print > 1.0:
                    last_print = now
                    _progress_line(self.progress, self.result, now - self.started)
            if index is None:
                raise ValueError(f"{self.path} is empty: no header row")

    def bad(self, n: int, problems: list[tuple[str, str, str]], raw_id: str) -> None:
        """Row ``n`` is bad: its problems (field, reason, detail) into the report."""
        self.result.bad_rows += 1
        for field_name, reason, detail in problems:
            self.result.errors += 1
            self.result.by_reason[reason] = self.result.by_reason.get(reason, 0) + 1
            # a row whose cells are shifted puts its ID number where a detail echoes it: masked
            self._writer.writerow([n, field_name, reason, scrub(detail), mask_id(raw_id)])

    def done(self) -> None:
        self.result.report = self.report
        self.result.seconds = time.monotonic() - self.started
        if not self.quiet:
            _progress_line(self.progress, self.result, self.result.seconds, final=True)


def run_import(settings: Settings, source_name: str, path: Path, *, report: Path | None = None, force: bool = False,
               producer: Any = None, quiet: bool = False) -> ImportResult:
    department: Department = settings.registry.by_slug[source_name]
    source = department.source
    result = ImportResult()
    digest = file_digest(path)
    ledger_key = f"{source}:{digest}"
    own_producer = producer is None
    if own_producer and not force:
        done = {r.key.decode() for r in read_to_end(settings.kafka_bootstrap_servers,
                                                     settings.topics.imports_of[source])}
        if ledger_key in done:
            result.already_imported = True
            return result
    producer = producer or make_producer(settings.kafka_bootstrap_servers, linger_ms=20, batch_size=256 * 1024)
    codec = Codec()
    topic = settings.topics.identity[source]
    rows = RowReport(path, report or path.with_name(path.name + ".errors.csv"), _header_map, result, quiet)
    occurred = dt.datetime.now(tz=dt.UTC).replace(microsecond=0)
    key = import_key(settings)
    for n, cells, index, raw_id in rows.rows():
        try:
            # each row its own recorded time, in the file's row order: a file that lists an
            # entry and an exit with one date decides them in the order the file gives
            ev = row_to_event(source, cells, index, occurred + dt.timedelta(milliseconds=n), key)
        except RowError as exc:
            rows.bad(n, [(exc.field, exc.reason, exc.detail)], raw_id)
            continue
        checked = validate_identity(ev, settings.registry)
        if isinstance(checked, Invalid):
            rows.bad(n, [(REASON_FIELD.get(r, "(row)"), r.value, checked.detail) for r in checked.reasons], raw_id)
            continue
        producer.send(topic, key=ev["event_id"].encode(), value=codec.encode("IdentityEvent", ev, topic=topic))
        result.published += 1
    producer.flush()
    if own_producer:
        producer.send(settings.topics.imports_of[source], key=ledger_key.encode(), value=json.dumps({
            "file": path.name, "rows": result.rows, "published": result.published, "bad_rows": result.bad_rows,
            "at": dt.datetime.now(dt.UTC).isoformat()}, ensure_ascii=False).encode())
        producer.flush()
        producer.close()
    rows.done()
    return result


def _progress_line(progress: dict[str, float], result: ImportResult, elapsed: float, final: bool = False) -> None:
    share = progress["done"] / progress["total"] if progress["total"] else 0.0
    width = 30
    bar = "#" * int(share * width) + "-" * (width - int(share * width))
    rate = result.rows / elapsed if elapsed > 0 else 0.0
    end = "\n" if final else "\r"
    print(f"[{bar}] {share:6.1%}  rows {result.rows:>9,}  good {result.published:>9,}  bad {result.bad_rows:>7,}  "
          f"{rate:>8,.0f} rows/s", end=end, file=sys.stderr, flush=True)
