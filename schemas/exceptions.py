"""The one error family of the wire layer: every decode failure is a DecodeError."""


class SchemaError(Exception):
    """Base of the wire layer's errors."""


class DecodeError(SchemaError):
    """Bytes that cannot be turned into a record; the edge dead-letters them.

    ``reason`` is a short machine-readable class (``FRAMING``, ``UNKNOWN_SCHEMA``,
    ``AVRO``, ``WRONG_RECORD``) carried in the dead-letter headers.
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


class RegistryError(SchemaError):
    """The schema registry refused or could not be reached."""
