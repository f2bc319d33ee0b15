"""The worker's stages, each a page: intake, person, payments, control.

A stage sees the worker's shared parts through ``Context`` (implemented by
``streams.handlers.Pipeline``), so no stage imports the module that builds it."""

from __future__ import annotations

from collections import Counter
from typing import Any, Protocol

from schemas.codec import Codec
from streams.domain.departments import Departments
from streams.domain.identity import Identity
from streams.domain.messages import Control, Effect, PaymentAck
from streams.domain.policy.spec import PolicyBook
from streams.kafka.topics import Topics
from streams.runtime.emit import Out
from streams.runtime.metrics import Metrics
from streams.runtime.store import PersonStore
from streams.settings import Settings


class Context(Protocol):
    settings: Settings
    book: PolicyBook
    codec: Codec
    secret: bytes
    names: Topics
    departments: Departments
    store: PersonStore
    metrics: Metrics
    fee_modes: Counter[str]
    fees_decided: int
    control: Any  # the control stage (the years opened per partition)

    def now_ms(self) -> int: ...

    async def emit(self, outs: list[Out], *, wait: bool = False) -> None: ...

    def dead_letter(self, msg: Any, error_class: str, message: str,
                    inner: tuple[bytes, bytes] | None = None) -> Out: ...

    def partition_of(self, key: bytes) -> int: ...

    def apply(self, key: bytes, command: Identity | PaymentAck, partition: int,
              pending: dict[bytes, bytes]) -> list[Out]: ...

    def publish(self, effects: list[Effect], pkey: str, home: int | None = None) -> list[Out]: ...

    def count_fees(self) -> None: ...

    async def run_control(self, cmd: Control, partition: int) -> None: ...

    async def read_commands(self, partition: int, start: int, end: int) -> list[Any]: ...

    async def committed_command_offset(self, partition: int) -> int | None: ...

    async def rewind_commands(self, partition: int, offset: int) -> None: ...

    async def offset_repair(self, kind: str, partition: int, expected: int, seen: int,
                            topic: str | None = None) -> None: ...
