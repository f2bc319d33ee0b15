"""Contract tests of the wire codec: exact bytes, round trips, evolution, both framings."""

from __future__ import annotations

import copy
import datetime as dt
import json
import struct
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from schemas import load_schemas, schema_file_name
from schemas.codec import Codec
from schemas.exceptions import DecodeError
from schemas.registry import SchemaRegistryClient

FIXED = dict(
    event_id="e-1", source="CIVIL_AFFAIRS", change="CERTIFIED", id_number="11010519491231002X", name="张三",
    category="MINIMUM_LIVING", region_code="410102", effective_date=dt.date(2024, 9, 1),
    occurred_at=dt.datetime(2024, 9, 1, tzinfo=dt.UTC), is_student=False,
)
ADDED_2026_12 = dict(previous_category=None, person_number=None, living_status=None)  # CONTRACT additions
FIXED_NOW = {**FIXED, **ADDED_2026_12}  # what a reader of the current schema sees of FIXED
# Pinned: a change here is a change of the contract's bytes (the three trailing 00 are the
# null branches of the optional fields added on 2026-12).
FIXED_HEX = (
    "c301c48d0f48c7423ce706652d310000243131303130353139343931323331303032580ce5bca0e4b889"
    "020c343130313032feb70280908daeb56400000000"
)
# The same record as the schema published before 2026-12 wrote it (schemas/history/identity_event.v1.avsc):
# every version ever published stays readable.
FIXED_HEX_V1 = (
    "c301cf01f94ea99dcae806652d310000243131303130353139343931323331303032580ce5bca0e4b889"
    "020c343130313032feb70280908daeb56400"
)


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO as written in the Avro specification (independent of fastavro)."""
    empty = 0xC15D213AA4D7A795
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (empty & -(fp & 1))
        table.append(fp)
    fp = empty
    for b in data:
        fp = (fp >> 8) ^ table[(fp ^ b) & 0xFF]
    return fp


def test_exact_bytes_of_one_fixed_record():
    data = Codec().encode("IdentityEvent", FIXED)
    assert data.hex() == FIXED_HEX


def test_bytes_of_the_schema_before_the_2026_12_additions_are_still_read():
    assert Codec().decode(bytes.fromhex(FIXED_HEX_V1)) == ("IdentityEvent", FIXED_NOW)


def test_every_published_schema_version_is_kept_and_read_by_its_fingerprint():
    from schemas import load_history

    codec = Codec()
    history = load_history()
    assert {s.name for s in history} >= {"IdentityEvent", "PaymentStatus", "FeeStandard", "SettlementLine"}
    for old in history:
        assert old.fingerprint != load_schemas()[old.name].fingerprint
        assert codec.writer_of(b"\xc3\x01" + old.fingerprint + b"\x00")[0].fingerprint == old.fingerprint


def test_single_object_header_is_the_spec_fingerprint_little_endian():
    schema = load_schemas()["IdentityEvent"]
    data = Codec().encode("IdentityEvent", FIXED)
    assert data[:2] == b"\xc3\x01"
    assert data[2:10] == struct.pack("<Q", crc64_avro(schema.canonical.encode()))


def test_every_contract_record_has_its_file_and_namespace():
    schemas = load_schemas()
    expected = {"IdentityEvent", "FeeStandard", "PaymentStatus", "Rejection", "ReviewCase",
                "SuspectedUnenrolled", "SettlementLine", "ControlCommand", "SubsidyClaim", "ClaimDecision",
                "PaymentInstruction", "OtherChannelSubsidy"}
    assert expected <= set(schemas)
    for name, schema in schemas.items():
        assert schema.raw["namespace"] == "zhucan.v1"
        assert schema_file_name(name) in {p.name for p in schema_dir_files()}


def schema_dir_files():
    from schemas import SCHEMA_DIR

    return list(SCHEMA_DIR.glob("*.avsc"))


SAMPLES = {
    "IdentityEvent": {**FIXED, "previous_category": "LOW_INCOME_MARGINAL", "person_number": "P-7",
                      "living_status": "ALIVE"},
    "FeeStandard": dict(
        message_id="k-2025-v1", id_number="11010519491231002X", name="张三", region_code="410102",
        insurance_year=2025, version=1, contribution_level=1, premium_fen=40000, subsidy_fen=28000,
        payable_fen=12000, payment_mode="DIFFERENCE", on_the_spot=False, category="MINIMUM_LIVING",
        funding_source="MEDICAL_ASSISTANCE_FUND", policy_id="410000-2025@abc", basis="持有: 低保(民政)",
        issued_at=dt.datetime(2024, 9, 2, tzinfo=dt.UTC)),
    "PaymentStatus": dict(
        ack_id="a1", id_number="11010519491231002X", insurance_year=2025, fee_version=1, status="PAID",
        amount_fen=12000, tax_reference="T1", acted_at=dt.datetime(2024, 10, 1, tzinfo=dt.UTC),
        contribution_level=2),
    "Rejection": dict(event_id="e", source="DISABILITY", id_number="x", reasons=["ID_FORMAT", "DATE_INVALID"],
                      detail="d", received_at=dt.datetime(2024, 10, 1, tzinfo=dt.UTC)),
    "ReviewCase": dict(case_id="c", kind="OTHER", id_number="x", insurance_year=2025, detail="d",
                       raised_at=dt.datetime(2024, 10, 1, tzinfo=dt.UTC), code="POST_HOC_SUBSIDY", amount_fen=8000),
    "SuspectedUnenrolled": dict(id_number="x", name="n", region_code="410102", insurance_year=2025, fee_version=2,
                                since=dt.date(2025, 1, 1), reason="r"),
    "SettlementLine": dict(region_code="410102", insurance_year=2025, category="ORPHAN", funding_source="OTHER",
                           on_the_spot=True, persons=3, subsidy_fen=120000, as_of=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
                           kind="POST_HOC_SUBSIDY", department="VETERANS"),
    "SubsidyClaim": dict(claim_id="c1", kind="CROSS_REGION_ENROLMENT", id_number="11010519491231002X", name="张三",
                         insurance_year=2025, enrolled_region_code="440106", scheme="RESIDENT", amount_paid_fen=40000,
                         paid_at=dt.datetime(2024, 10, 1, tzinfo=dt.UTC), evidence="T-9",
                         submitted_at=dt.datetime(2024, 11, 1, tzinfo=dt.UTC)),
    "ClaimDecision": dict(claim_id="c1", id_number="x", insurance_year=2025, outcome="REFUSED",
                          reasons=["ALREADY_SUBSIDISED", "AFTER_DEADLINE"], amount_fen=0, policy_id="p", basis="b",
                          decided_at=dt.datetime(2024, 11, 2, tzinfo=dt.UTC), code=""),
    "PaymentInstruction": dict(instruction_id="i1", kind="LATE_DATA_REFUND", cause_id="a1", id_number="x", name="n",
                               region_code="510402", insurance_year=2022, amount_fen=18000,
                               category="MINIMUM_LIVING", funding_source="MEDICAL_ASSISTANCE_FUND",
                               channel="TAX_REFUND", notify_sms=False, policy_id="p", basis="b",
                               issued_at=dt.datetime(2021, 10, 2, tzinfo=dt.UTC)),
    "OtherChannelSubsidy": dict(record_id="r1", funder="慈善总会", id_number="x", insurance_year=2025,
                                amount_fen=10000, reported_at=dt.datetime(2024, 10, 3, tzinfo=dt.UTC)),
    "ControlCommand": dict(command_id="c", command="OPEN_YEAR", region_code="410000", insurance_year=2026,
                           issued_at=dt.datetime(2025, 8, 1, tzinfo=dt.UTC)),
}


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_round_trip(name):
    codec = Codec()
    decoded_name, value = codec.decode(codec.encode(name, SAMPLES[name]))
    assert decoded_name == name
    assert value == SAMPLES[name]


def test_old_reader_reads_new_writer_with_an_added_optional_field():
    new = copy.deepcopy(load_schemas()["IdentityEvent"].raw)
    new["fields"].append({"name": "household_number", "type": "string", "default": ""})
    writer = Codec()
    writer_schema = writer.add_writer_schema(new)
    data = b"\xc3\x01" + writer_schema.fingerprint + writer.encode_body(writer_schema, {**FIXED_NOW, "household_number": "H-7"})
    reader = Codec()
    reader.add_writer_schema(new)  # readers learn writer schemas by fingerprint
    name, value = reader.decode(data)
    assert name == "IdentityEvent" and value == FIXED_NOW  # the new field is ignored


def test_new_reader_reads_old_writer_missing_a_defaulted_field():
    old = copy.deepcopy(load_schemas()["IdentityEvent"].raw)
    old["fields"] = [f for f in old["fields"] if f["name"] != "is_student"]
    codec = Codec()
    old_schema = codec.add_writer_schema(old)
    body = {k: v for k, v in FIXED.items() if k != "is_student"}
    data = b"\xc3\x01" + old_schema.fingerprint + codec.encode_body(old_schema, body)
    assert codec.decode(data)[1]["is_student"] is False


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "FRAMING"),
        (b"plain text", "FRAMING"),
        (b"\xc3\x01\x00\x01", "FRAMING"),
        (b"\xc3\x01" + b"\x00" * 8 + b"abc", "UNKNOWN_SCHEMA"),
        (bytes.fromhex(FIXED_HEX)[:30], "AVRO"),
        (bytes.fromhex(FIXED_HEX) + b"\x00", "AVRO"),
        (b"\x00\x00\x00\x00\x07abc", "UNKNOWN_SCHEMA"),  # Confluent framing but no registry
    ],
)
def test_undecodable_bytes_raise_a_typed_decode_error(data, reason):
    with pytest.raises(DecodeError) as err:
        Codec().decode(data)
    assert err.value.reason == reason


def test_decode_can_insist_on_a_record():
    data = Codec().encode("IdentityEvent", FIXED)
    with pytest.raises(DecodeError) as err:
        Codec().decode(data, expect="PaymentStatus")
    assert err.value.reason == "WRONG_RECORD"


class _FakeRegistry(BaseHTTPRequestHandler):
    """The two calls of the Confluent registry API the codec uses."""

    schemas: list[str] = []

    def log_message(self, *args):  # quiet
        pass

    def _reply(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/vnd.schemaregistry.v1+json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["schema"] not in self.schemas:
            self.schemas.append(body["schema"])
        self._reply({"id": self.schemas.index(body["schema"]) + 1})

    def do_GET(self):
        schema_id = int(self.path.rsplit("/", 1)[-1])
        self._reply({"schema": self.schemas[schema_id - 1]})


@pytest.fixture
def registry_url():
    _FakeRegistry.schemas = []
    server = HTTPServer(("127.0.0.1", 0), _FakeRegistry)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()


def test_confluent_framing_through_a_registry(registry_url):
    writer = Codec(SchemaRegistryClient(registry_url))
    data = writer.encode("IdentityEvent", FIXED, topic="identity.civil-affairs.v1")
    assert data[0] == 0 and struct.unpack(">I", data[1:5]) == (1,)
    # A fresh reader fetches the writer schema by id; it also still reads single-object bytes.
    reader = Codec(SchemaRegistryClient(registry_url))
    assert reader.decode(data) == ("IdentityEvent", FIXED_NOW)
    assert reader.decode(bytes.fromhex(FIXED_HEX)) == ("IdentityEvent", FIXED_NOW)
