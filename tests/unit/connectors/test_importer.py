"""Department file import without a broker (a recording producer stands in for Kafka here)."""

from __future__ import annotations

import csv
import datetime as dt
import tracemalloc
from pathlib import Path

import pytest

from connectors.importer import TEMPLATE, run_import
from schemas.codec import Codec
from streams.settings import Settings
from tests.fixtures import new_id


class RecordingProducer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes]] = []
        self.keep = True

    def send(self, topic, key=None, value=None, headers=None):
        if self.keep:
            self.sent.append((topic, key, value))

    def flush(self):
        pass


SETTINGS = Settings(kafka_bootstrap_servers="localhost:1")


def write_csv(path: Path, rows: list[list[str]]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["姓名", "身份证号", "身份类别", "认定地区划代码", "生效日期", "变动类型", "学生儿童"])
        w.writerows(rows)
    return path


def test_good_rows_are_published_and_every_bad_row_is_reported(tmp_path):
    good1, good2, bad_sum = new_id(), new_id(), new_id()
    bad_sum = bad_sum[:17] + ("1" if bad_sum[17] != "1" else "2")
    path = write_csv(tmp_path / "民政.csv", [
        ["王芳", good1, "低保对象", "410102", "2024-06-01", "认定", "否"],
        ["李强", good2, "EXTREME_POVERTY", "410102", "2024/06/01", "", ""],
        ["错号", bad_sum, "低保", "410102", "2024-06-01", "认定", "否"],
        ["错类", new_id(), "防止返贫监测对象", "410102", "2024-06-01", "认定", "否"],
        ["错日", new_id(), "低保", "410102", "2024-13-01", "认定", "否"],
        ["错变", new_id(), "低保", "410102", "2024-06-01", "搬家", "否"],
        ["", "", "", "", "", "", ""],
    ])
    producer = RecordingProducer()
    result = run_import(SETTINGS, "civil-affairs", path, producer=producer, quiet=True)
    assert (result.rows, result.published, result.bad_rows) == (6, 2, 4)
    codec = Codec()
    events = [codec.decode(v)[1] for _, _, v in producer.sent]
    assert [e["id_number"] for e in events] == [good1, good2]
    assert {t for t, _, _ in producer.sent} == {"identity.civil-affairs.v1"}
    assert events[0]["category"] == "MINIMUM_LIVING" and events[1]["effective_date"] == dt.date(2024, 6, 1)
    report = list(csv.reader(open(result.report, encoding="utf-8-sig")))
    assert report[0] == ["row", "field", "reason", "detail", "id_number (masked)"]
    rows = {(r[0], r[1], r[2]) for r in report[1:]}
    assert rows == {("4", "id_number", "ID_CHECKSUM"), ("5", "category", "CATEGORY_NOT_OF_SOURCE"),
                    ("6", "effective_date", "DATE_INVALID"), ("7", "change", "UNKNOWN_CHANGE")}
    text = Path(result.report).read_text(encoding="utf-8-sig")
    assert bad_sum not in text and bad_sum[:6] + "********" + bad_sum[-4:] in text


def test_event_ids_derive_from_content(tmp_path):
    idn = new_id()
    rows = [["王芳", idn, "低保", "410102", "2024-06-01", "认定", "否"]]
    a, b = RecordingProducer(), RecordingProducer()
    run_import(SETTINGS, "civil-affairs", write_csv(tmp_path / "a.csv", rows), producer=a, quiet=True)
    run_import(SETTINGS, "civil-affairs", write_csv(tmp_path / "b.csv", rows), producer=b, quiet=True)
    assert a.sent[0][1] == b.sent[0][1] and a.sent[0][1].startswith(b"imp-")


def test_xlsx_in_the_template(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "身份证号", "身份类别", "认定地区划代码", "生效日期", "变动类型", "学生儿童"])
    idn = new_id("510402", born=dt.date(2008, 1, 1))
    ws.append(["冯晓", idn, "重度残疾人员", 510402, dt.datetime(2021, 5, 1), "认定", "是"])
    ws.append(["坏", "123", "重度残疾", "510402", dt.datetime(2021, 5, 1), "认定", "是"])
    path = tmp_path / "残联.xlsx"
    wb.save(path)
    producer = RecordingProducer()
    result = run_import(SETTINGS, "disability", path, producer=producer, quiet=True)
    assert (result.published, result.bad_rows) == (1, 1)
    (event,) = [Codec().decode(v)[1] for _, _, v in producer.sent]
    assert event["is_student"] is True and event["region_code"] == "510402" and event["id_number"] == idn


def test_missing_columns_are_named(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text("姓名,身份证号\n张三,1\n", encoding="utf-8")
    with pytest.raises(ValueError, match="身份类别 \\(category\\)"):
        run_import(SETTINGS, "civil-affairs", path, producer=RecordingProducer(), quiet=True)


def test_template_parses(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text(TEMPLATE, encoding="utf-8")
    producer = RecordingProducer()
    assert run_import(SETTINGS, "civil-affairs", path, producer=producer, quiet=True).published == 1


def test_memory_does_not_grow_with_the_file(tmp_path):
    """Streaming: peak memory for 20k rows is about that for 2k rows (the file is never held whole)."""

    def peak(n: int) -> int:
        path = tmp_path / f"big{n}.csv"
        row = ["王芳", new_id(), "低保", "410102", "2024-06-01", "认定", "否"]
        write_csv(path, [row] * n)
        producer = RecordingProducer()
        producer.keep = False
        tracemalloc.start()
        run_import(SETTINGS, "civil-affairs", path, producer=producer, quiet=True)
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        return top

    small, large = peak(2_000), peak(20_000)
    assert large < small * 2, (small, large)


def test_rows_are_recorded_in_file_order_and_no_exit_is_lost(tmp_path):
    """Issue #19 (1): every row of a monthly file used to carry one recorded time, so an entry and
    an exit tied and the content hash ordered them. Each row now has its own recorded time in
    row order, and the fold orders by effective date first: the exit is never lost, whichever
    row comes first (000 四; 002 二(二)1: 每月…提供)."""
    from streams.domain.identity import Identity, validate_identity
    from streams.domain.person import PersonState
    from tests.fixtures import shipped_book

    people = [new_id() for _ in range(40)]
    rows = []
    for n, idn in enumerate(people):
        entry = ["王芳", idn, "特困人员", "410102", "2024-06-01", "认定", "否"]
        leave = ["王芳", idn, "特困人员", "410102", "2024-12-01", "退出", "否"]
        rows += [leave, entry] if n % 2 else [entry, leave]  # half the file lists the exit first
    producer = RecordingProducer()
    run_import(SETTINGS, "civil-affairs", write_csv(tmp_path / "monthly.csv", rows), producer=producer, quiet=True)
    codec = Codec()
    events = [codec.decode(v)[1] for _, _, v in producer.sent]
    recorded = [e["occurred_at"] for e in events]
    assert recorded == sorted(recorded) and len(set(recorded)) == len(recorded)  # row order, no ties
    kept = 0
    for idn in people:
        state = PersonState(idn)
        for raw in (e for e in events if e["id_number"] == idn):
            ident = validate_identity(raw)
            assert isinstance(ident, Identity)
            state.apply_identity(ident, shipped_book(), "ab" * 32, 1)
        year = state.years.get(2025)
        kept += year is not None and year.mode != "WITHDRAWN"
    assert kept == 0, f"{kept} of {len(people)} people kept a subsidy after their exit"


def test_the_error_report_is_its_owners_alone(tmp_path):
    """Issue #20 (3): the report names rows of people; it was written 0644."""
    path = write_csv(tmp_path / "bad.csv", [["错号", "410102197001011234", "低保", "410102", "2024-06-01", "认定", "否"]])
    result = run_import(SETTINGS, "civil-affairs", path, producer=RecordingProducer(), quiet=True)
    assert result.bad_rows == 1
    assert result.report.stat().st_mode & 0o077 == 0


def test_a_row_with_shifted_cells_leaves_no_id_number_in_the_report(tmp_path):
    """Issue #20 (7): when a row's cells are shifted, the ID number lands where a detail echoes it."""
    idn = new_id()
    path = write_csv(tmp_path / "shifted.csv", [["王芳", "低保对象", idn, "410102", "2024-06-01", "认定", "否"]])
    result = run_import(SETTINGS, "civil-affairs", path, producer=RecordingProducer(), quiet=True)
    assert result.bad_rows == 1
    text = result.report.read_text(encoding="utf-8-sig")
    assert idn not in text and idn[:6] in text


def test_import_ids_are_keyed_with_the_departments_own_secret(tmp_path, monkeypatch):
    """Issue #20 (5): import ids were a plain hash of the row, so any department could compute
    the id of another's row. With the department's key (ZHUCAN_IMPORT_KEY, or its password on a
    secured cluster) they are an HMAC: stable for that department, not computable by another."""
    from connectors.importer import event_id_for

    rows = [["王芳", new_id(), "低保对象", "410102", "2024-06-01", "认定", "否"]]
    ids = []
    for key in ("civil-affairs-own-key-1", "civil-affairs-own-key-1", "another-key"):
        monkeypatch.setenv("ZHUCAN_IMPORT_KEY", key)
        producer = RecordingProducer()
        run_import(SETTINGS, "civil-affairs", write_csv(tmp_path / "f.csv", rows), producer=producer, quiet=True)
        ids.append(Codec().decode(producer.sent[0][2])[1]["event_id"])
    assert ids[0] == ids[1] != ids[2]
    ev = Codec().decode(producer.sent[0][2])[1]
    assert ids[0] != event_id_for("CIVIL_AFFAIRS", ev)  # not the plain content hash
