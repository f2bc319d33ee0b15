"""The wire codec: Avro single-object encoding, or the Confluent wire format.

Writers use single-object encoding (``C3 01`` + 8-byte little-endian CRC-64-AVRO
fingerprint) unless a schema registry is configured, in which case they write the
Confluent framing (``00`` + 4-byte big-endian schema id). Readers accept both and
resolve the writer schema against the reader's (the current file in ``schemas/``),
so added optional fields flow both ways.
"""

from __future__ import annotations

import io
import struct
from pathlib import Path
from typing import Any

import fastavro

from schemas import AvroSchema, load_history, load_schemas, parse_schema
from schemas.exceptions import DecodeError, SchemaError
from schemas.fast_writer import Slow, avro_long, avro_string, compile_flat, compile_writer
from schemas.registry import SchemaRegistryClient

SINGLE_OBJECT_MAGIC = b"\xc3\x01"
CONFLUENT_MAGIC = b"\x00"


class Codec:
    """Encode and decode the contract's records. Thread-safe for reading."""

    def __init__(self, registry: SchemaRegistryClient | None = None, schema_dir: Path | None = None) -> None:
        self.schemas = load_schemas(schema_dir) if schema_dir else load_schemas()
        self.registry = registry
        self._writers: dict[bytes, AvroSchema] = {s.fingerprint: s for s in self.schemas.values()}
        self._registry_writers: dict[int, AvroSchema] = {}
        # The flat records' bodies by code generated from their schemas (fastavro's bytes; anything
        # the generated code is not sure of goes to fastavro): schemas/fast_writer.py.
        self._fast_writers = {name: compile_writer(s.raw) for name, s in self.schemas.items()}
        # Before those, where it is built, the same in C, which reads too (schemas/_flat.c: it
        # returns fastavro's bytes or value, or None for the Python to do it).
        self._flat = {name: compile_flat(s.raw) for name, s in self.schemas.items()}
        # The hot path: single-object header -> (record name, writer schema, reader schema or
        # None, the C reader when the writer's schema is the reader's).
        self._fast: dict[bytes, tuple[str, Any, Any, Any]] = {
            SINGLE_OBJECT_MAGIC + s.fingerprint: (s.name, s.parsed, None, self._flat[s.name])
            for s in self.schemas.values()}
        for old in load_history():  # earlier published versions: resolved against the current file
            self._writers.setdefault(old.fingerprint, old)
            self._fast.setdefault(SINGLE_OBJECT_MAGIC + old.fingerprint,
                                  (old.name, old.parsed, self.schemas[old.name].parsed, None))

    # -- writer schemas known to this reader ---------------------------------
    def add_writer_schema(self, raw: dict[str, Any]) -> AvroSchema:
        """Teach the reader an older or newer writer schema (by fingerprint)."""
        schema = parse_schema(raw)
        self._writers.setdefault(schema.fingerprint, schema)
        return schema

    # -- encoding ------------------------------------------------------------
    def encode(self, record_name: str, value: dict[str, Any], topic: str | None = None) -> bytes:
        """Encode ``value`` as ``record_name``. With a registry, ``topic`` names the subject."""
        schema = self.schemas[record_name]
        flat = self._flat[record_name]
        body = flat.write(value) if flat is not None else None
        if body is None:
            fast = self._fast_writers[record_name]
            try:
                body = fast(value) if fast is not None else self.encode_body(schema, value)
            except Slow:
                body = self.encode_body(schema, value)
        if self.registry is not None and topic is not None:
            schema_id = self.registry.register(f"{topic}-value", schema.raw)
            return CONFLUENT_MAGIC + struct.pack(">I", schema_id) + body
        return SINGLE_OBJECT_MAGIC + schema.fingerprint + body

    def header(self, record_name: str, topic: str | None = None) -> bytes:
        """The framing ``encode`` writes before ``record_name``'s body (for ``topic``)."""
        if self.registry is not None and topic is not None:
            schema_id = self.registry.register(f"{topic}-value", self.schemas[record_name].raw)
            return CONFLUENT_MAGIC + struct.pack(">I", schema_id)
        return SINGLE_OBJECT_MAGIC + self.schemas[record_name].fingerprint

    def template(self, record_name: str, value: dict[str, Any], strings: tuple[str, ...], stamp: str,
                 topic: str | None = None) -> tuple[bytes, bytes, bytes] | None:
        """``encode``'s record of ``value`` as three runs of bytes around the fields that change
        from person to person: ``strings``, the schema's first fields (in its order), and the long
        ``stamp``. A record of strings ``s1..sn`` and stamp ``t`` (the other fields as in
        ``value``) is then ``header + avro_string(s1) + ... + avro_string(sn) + middle +
        avro_long(t) + tail``. None where the record does not split so: the two records encoded
        with the strings empty and the stamp 0 and 1 must differ in that one byte only, and a
        record of other strings and stamp, put together so, must be the one ``encode`` gives."""
        base = {**value, **dict.fromkeys(strings, ""), stamp: 0}
        zero = self.encode(record_name, base, topic=topic)
        one = self.encode(record_name, {**base, stamp: 1}, topic=topic)
        header = self.header(record_name, topic)
        start = len(header) + len(strings)  # the empty strings: a zero length each
        at = [i for i in range(min(len(zero), len(one))) if zero[i] != one[i]]
        if len(zero) != len(one) or len(at) != 1 or at[0] < start or not zero.startswith(header + bytes(len(strings))) \
                or (zero[at[0]], one[at[0]]) != (0, 2):
            return None
        middle, tail = zero[start:at[0]], zero[at[0] + 1:]
        probe = {**value, **{s: f"{s}-{i}-证" for i, s in enumerate(strings)}, stamp: 1_700_000_000_123}
        made = b"".join((header, *(avro_string(probe[s]) for s in strings), middle, avro_long(probe[stamp]), tail))
        return (header, middle, tail) if made == self.encode(record_name, probe, topic=topic) else None

    @staticmethod
    def encode_body(schema: AvroSchema, value: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        try:
            fastavro.schemaless_writer(buf, schema.parsed, value)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise SchemaError(f"cannot encode {schema.name}: {exc}") from exc
        return buf.getvalue()

    # -- decoding ------------------------------------------------------------
    def writer_of(self, data: bytes) -> tuple[AvroSchema, int]:
        """The writer schema of framed ``data`` and where its body starts."""
        if data[:2] == SINGLE_OBJECT_MAGIC:
            if len(data) < 10:
                raise DecodeError("FRAMING", f"single-object header truncated ({len(data)} bytes)")
            writer = self._writers.get(data[2:10])
            if writer is None:
                raise DecodeError("UNKNOWN_SCHEMA", f"unknown writer fingerprint {data[2:10].hex()}")
            return writer, 10
        if data[:1] == CONFLUENT_MAGIC:
            if len(data) < 5:
                raise DecodeError("FRAMING", f"Confluent header truncated ({len(data)} bytes)")
            (schema_id,) = struct.unpack(">I", data[1:5])
            return self._registry_writer(schema_id), 5
        raise DecodeError("FRAMING", f"unknown framing, first bytes {data[:2].hex() or '(empty)'}")

    def _registry_writer(self, schema_id: int) -> AvroSchema:
        if schema_id in self._registry_writers:
            return self._registry_writers[schema_id]
        if self.registry is None:
            raise DecodeError("UNKNOWN_SCHEMA", f"Confluent schema id {schema_id} but no registry configured")
        try:
            schema = parse_schema(self.registry.get_schema(schema_id))
        except SchemaError as exc:
            raise DecodeError("UNKNOWN_SCHEMA", f"schema id {schema_id}: {exc}") from exc
        self._registry_writers[schema_id] = schema
        return schema

    def decode(self, data: bytes | None, expect: str | tuple[str, ...] | None = None) -> tuple[str, dict[str, Any]]:
        """Decode framed bytes into ``(record_name, value)``; the reader schema is the current file.

        ``expect`` restricts which records are acceptable here; anything else is a
        ``DecodeError("WRONG_RECORD")``.
        """
        if not data:
            raise DecodeError("FRAMING", "empty value")
        fast = self._fast.get(data[:10])  # single-object framing of a schema of the contract
        if fast is not None and (expect is None or fast[0] == expect or (not isinstance(expect, str) and fast[0] in expect)):
            name, writer_parsed, reader_parsed, flat = fast
            if flat is not None:
                value = flat.read(data, 10)
                if value is not None:
                    return name, value
            buf = io.BytesIO(data)
            buf.seek(10)
            try:
                value = fastavro.schemaless_reader(buf, writer_parsed, reader_parsed)
            except Exception as exc:  # fastavro raises many types on corrupt input
                raise DecodeError("AVRO", f"{name}: {type(exc).__name__}: {exc}") from exc
            if buf.tell() != len(data):
                raise DecodeError("AVRO", f"{name}: {len(data) - buf.tell()} trailing bytes")
            return name, value  # type: ignore[return-value]
        writer, start = self.writer_of(data)
        reader = self.schemas.get(writer.name)
        if reader is None:
            raise DecodeError("WRONG_RECORD", f"record {writer.name} is not part of the contract")
        if expect is not None:
            allowed = (expect,) if isinstance(expect, str) else expect
            if writer.name not in allowed:
                raise DecodeError("WRONG_RECORD", f"got {writer.name}, expected {' or '.join(allowed)}")
        buf = io.BytesIO(data)
        buf.seek(start)
        try:
            value = fastavro.schemaless_reader(
                buf, writer.parsed, reader.parsed if reader is not writer else None
            )
        except Exception as exc:  # fastavro raises many types on corrupt input
            raise DecodeError("AVRO", f"{writer.name}: {type(exc).__name__}: {exc}") from exc
        if buf.tell() != len(data):
            raise DecodeError("AVRO", f"{writer.name}: {len(data) - buf.tell()} trailing bytes")
        return writer.name, value  # type: ignore[return-value]
