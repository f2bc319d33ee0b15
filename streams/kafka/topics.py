"""Every topic zhucan touches, in one list: name, record, key, retention, who writes it.

Admin (``streams/kafka/admin.py``: creation and configs), the settings' ``Topics`` names, the
intake's subscriptions and (issue #13) the ACLs all read this list; nothing else spells a topic
name. The department topics come from ``streams/domain/departments.py`` (one entry each).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from streams.domain.departments import DEPARTMENTS, Department

DAY_MS = 24 * 3600 * 1000


@dataclass(frozen=True)
class TopicSpec:
    attr: str  # the attribute of ``Topics`` (for departments: the department's source)
    name: str  # without the deployment prefix
    record: str | None  # the contract's record (schemas/*.avsc); None: zhucan's own bytes
    key: str  # what the record key is
    writer: str  # who produces to it
    retention_ms: int | None  # None: compacted (kept until replaced)
    contract: bool  # in CONTRACT.md (False: internal, under "zhucan.")
    # Whether a record's partition is chosen by its key and that choice matters (a person's order,
    # a compacted key, the changelog beside its commands): such a topic's partition count must not
    # change once it holds data (`zhucan topics create` refuses).
    keyed: bool = True

    @property
    def configs(self) -> dict[str, str]:
        """Every config the spec sets (`zhucan topics check` compares each): a size limit is never
        one (retention.bytes -1), or a changed one would delete records by size (issue #20)."""
        if self.retention_ms is None:
            return {"cleanup.policy": "compact", "retention.bytes": "-1"}
        return {"cleanup.policy": "delete", "retention.ms": str(self.retention_ms), "retention.bytes": "-1"}


def department_topics(d: Department) -> tuple[TopicSpec, TopicSpec]:
    """A department's identity topic, and its own rejections (the same Rejection records as
    identity.rejected.v1, split so that ACLs keep each department to its own people)."""
    return (TopicSpec(d.source, d.topic, "IdentityEvent", "department's choice", d.source, 30 * DAY_MS, True,
                      keyed=False),  # zhucan re-keys by person
            TopicSpec(f"rejected:{d.source}", d.rejected_topic, "Rejection", "person token", "zhucan", 30 * DAY_MS,
                      True))


# The contract's topics besides the departments', then zhucan's internal ones.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("rejected", "identity.rejected.v1", "Rejection", "person token", "zhucan", 30 * DAY_MS, True),
    # fee-standard.v1 keeps every version: time retention, never compaction (CONTRACT.md).
    TopicSpec("fee_standard", "fee-standard.v1", "FeeStandard", "person token", "zhucan", 400 * DAY_MS, True),
    TopicSpec("payment_status", "payment-status.v1", "PaymentStatus", "person token", "tax", 30 * DAY_MS, True),
    TopicSpec("review", "review.v1", "ReviewCase", "person token", "zhucan", 30 * DAY_MS, True),
    TopicSpec("unenrolled", "unenrolled.suspected.v1", "SuspectedUnenrolled", "person token", "zhucan",
              30 * DAY_MS, True),
    TopicSpec("settlement", "settlement.v1", "SettlementLine", "region|year", "operators", 30 * DAY_MS, True),
    TopicSpec("control", "control.v1", "ControlCommand", "command id", "operators", 30 * DAY_MS, True, keyed=False),
    TopicSpec("person_commands", "zhucan.person-commands", None, "person token / batch", "zhucan", 7 * DAY_MS, False),
    TopicSpec("dead_letter", "zhucan.dead-letter", None, "origin key", "zhucan", 90 * DAY_MS, False, keyed=False),
    # The person table's changelog (compacted only, never deleted by time): created here with the
    # others, so its replication is zhucan's and not Faust's default; Faust finds it existing.
    TopicSpec("person_changelog", "zhucan.person-changelog", None, "person token", "zhucan", None, False),
    TopicSpec("control_progress", "zhucan.control-progress", None, "command id", "zhucan", 7 * DAY_MS, False,
              keyed=False),
    # what the offset guards did (streams/runtime/applied.py): a gap filled, a stalled commit healed
    TopicSpec("offset_repairs", "zhucan.offset-repairs", None, "topic[partition]", "zhucan", 30 * DAY_MS, False,
              keyed=False),
    # ledgers of what was done once: compacted, kept
    TopicSpec("dead_letter_replays", "zhucan.dead-letter-replays", None, "origin", "operators", None, False),
)


def import_ledger(d: Department) -> TopicSpec:
    """A department's import ledger (``zhucan import``): compacted, kept, written by that department only."""
    return TopicSpec(f"imports:{d.source}", d.imports_topic, None, "file digest", d.source, None, False)


class Topics:
    """Every topic name, with the deployment prefix applied: ``topics.fee_standard``,
    ``topics.identity[source]``; ``specs`` gives the whole list."""

    def __init__(self, prefix: str = "", departments: tuple[Department, ...] = DEPARTMENTS) -> None:
        self.prefix = prefix
        pairs = [department_topics(d) for d in departments]
        # in the contract's order: the departments' topics, identity.rejected.v1 (TOPICS[0]) and
        # each department's own rejections after it, then the rest
        self.specs = (tuple(identity for identity, _ in pairs) + TOPICS[:1] + tuple(own for _, own in pairs)
                      + TOPICS[1:] + tuple(import_ledger(d) for d in departments))
        self.identity = {d.source: prefix + d.topic for d in departments}
        self.rejected_of = {d.source: prefix + d.rejected_topic for d in departments}
        self.imports_of = {d.source: prefix + d.imports_topic for d in departments}
        self._by_topic = {prefix + d.topic: d.source for d in departments}
        for spec in TOPICS:
            setattr(self, spec.attr, prefix + spec.name)

    # typed names (set in __init__ from TOPICS)
    rejected: str
    fee_standard: str
    payment_status: str
    review: str
    unenrolled: str
    settlement: str
    control: str
    person_commands: str
    dead_letter: str
    person_changelog: str
    control_progress: str
    offset_repairs: str
    dead_letter_replays: str

    def source_of(self, topic: str) -> str | None:
        """The department whose topic this is, or None."""
        return self._by_topic.get(topic)

    def name(self, spec: TopicSpec) -> str:
        return self.prefix + spec.name

    def contract(self) -> list[str]:
        return [self.name(s) for s in self.specs if s.contract]

    def internal(self) -> list[str]:
        return [self.name(s) for s in self.specs if not s.contract]

    def configs(self) -> dict[str, dict[str, str]]:
        """Topic configs of every topic zhucan creates."""
        return {self.name(s): s.configs for s in self.specs}


@lru_cache(maxsize=64)
def topics_for(prefix: str, departments: tuple[Department, ...] = DEPARTMENTS) -> Topics:
    return Topics(prefix, departments)
