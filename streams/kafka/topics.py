"""Every topic zhucan touches, in one list: name, record, key, retention, who writes it, and
for an output of the person stage the effect it publishes and the metric that counts it.

Admin (``streams/kafka/admin.py``: creation and configs), the settings' ``Topics`` names, the
intake's subscriptions, the publisher of effects (``streams/runtime/publish.py``), the metrics'
HELP lines and the ACL file's test all read this list; nothing else spells a topic name. The
department topics come from ``streams/domain/departments.py`` (one entry each).

Adding an output topic is one ``TopicSpec`` here with its ``effect`` (a class in
``streams/domain/messages.py`` with ``to_record``) and its record's ``schemas/<Record>.avsc``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from streams.domain.departments import DEPARTMENTS, Department
from streams.domain.messages import (
    ClaimDecided,
    FeeStandardIssued,
    InstructionIssued,
    ReviewRaised,
    SuspectedFound,
)

DAY_MS = 24 * 3600 * 1000
WORKER = "zhucan-worker"  # zhucan's own principal (deploy/acl.yaml)


@dataclass(frozen=True)
class Counted:
    """The counter a published effect adds one to, with its labels read off the effect."""

    name: str
    help: str
    labels: tuple[str, ...] = ()


@dataclass(frozen=True)
class TopicSpec:
    attr: str  # the attribute of ``Topics`` (for departments: the department's source)
    name: str  # without the deployment prefix
    record: str | None  # the contract's record (schemas/*.avsc); None: zhucan's own bytes
    key: str  # what the record key is
    writer: str  # the principal that produces to it (deploy/acl.yaml grants it WRITE: a test checks)
    retention_ms: int | None  # None: compacted (kept until replaced)
    contract: bool  # in CONTRACT.md (False: internal, under "zhucan.")
    # Whether a record's partition is chosen by its key and that choice matters (a person's order,
    # a compacted key, the changelog beside its commands): such a topic's partition count must not
    # change once it holds data (`zhucan topics create` refuses).
    keyed: bool = True
    # For an output of the person stage: the effect class whose instances are published here
    # (as ``record``), the counter each adds to, whether each is logged (``describe()``), and
    # whether the time from the department's record to its publication is the latency metric.
    effect: type | None = None
    counted: Counted | None = None
    logged: bool = False
    timed: bool = False

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
    return (TopicSpec(d.source, d.topic, "IdentityEvent", "department's choice", d.slug, 30 * DAY_MS, True,
                      keyed=False),  # zhucan re-keys by person
            TopicSpec(f"rejected:{d.source}", d.rejected_topic, "Rejection", "person token", WORKER, 30 * DAY_MS,
                      True))


# The contract's topics besides the departments', then zhucan's internal ones.
TOPICS: tuple[TopicSpec, ...] = (
    TopicSpec("rejected", "identity.rejected.v1", "Rejection", "person token", WORKER, 30 * DAY_MS, True),
    # fee-standard.v1 keeps every version: time retention, never compaction (CONTRACT.md).
    TopicSpec("fee_standard", "fee-standard.v1", "FeeStandard", "person token", WORKER, 400 * DAY_MS, True,
              effect=FeeStandardIssued, counted=Counted("zhucan_fee_standards_out_total",
                                                        "Fee-standard versions published, per payment mode",
                                                        ("payment_mode",)), timed=True),
    TopicSpec("payment_status", "payment-status.v1", "PaymentStatus", "person token", "tax", 30 * DAY_MS, True),
    TopicSpec("review", "review.v1", "ReviewCase", "person token", WORKER, 30 * DAY_MS, True,
              effect=ReviewRaised, counted=Counted("zhucan_review_cases_total", "Review cases raised, per kind",
                                                   ("kind",)), logged=True),
    TopicSpec("unenrolled", "unenrolled.suspected.v1", "SuspectedUnenrolled", "person token", WORKER,
              30 * DAY_MS, True, effect=SuspectedFound,
              counted=Counted("zhucan_suspected_unenrolled_total", "Suspected un-enrolled people published")),
    # written by the worker from the ledger's totals (a SETTLE on control.v1; `zhucan settle --publish` sends one)
    TopicSpec("settlement", "settlement.v1", "SettlementLine", "region|year|class|fund|...", WORKER, 30 * DAY_MS, True),
    TopicSpec("control", "control.v1", "ControlCommand", "command id", "operator", 30 * DAY_MS, True, keyed=False),
    # money to people (CONTRACT additions 2026-12): claims in, one decision per claim and the
    # instructions out (kept like the standards: they are the money's record), other channels in
    TopicSpec("claims", "subsidy-claim.v1", "SubsidyClaim", "the bureau's choice", "county-bureau", 400 * DAY_MS, True,
              keyed=False),  # zhucan re-keys by person
    TopicSpec("claim_decisions", "subsidy-claim.decided.v1", "ClaimDecision", "person token", WORKER, 400 * DAY_MS,
              True, effect=ClaimDecided, counted=Counted("zhucan_claims_decided_total", "Claims decided, per outcome",
                                                         ("outcome",)), logged=True),
    TopicSpec("instructions", "payment-instruction.v1", "PaymentInstruction", "person token", WORKER, 400 * DAY_MS,
              True, effect=InstructionIssued, counted=Counted("zhucan_payment_instructions_total",
                                                              "Payment instructions issued, per kind", ("kind",)),
              logged=True),
    TopicSpec("other_channel", "subsidy.other-channel.v1", "OtherChannelSubsidy", "the funder's choice",
              "other-funders", 400 * DAY_MS, True, keyed=False),
    # the ledger (台账, issue #24): one line per person-year, compacted (a withdrawn year stays as
    # WITHDRAWN, never a tombstone), in the person's partition of the person topic
    TopicSpec("ledger", "ledger.v1", "LedgerEntry", "person token|year", WORKER, None, True),
    TopicSpec("person_commands", "zhucan.person-commands", None, "person token / batch", WORKER, 7 * DAY_MS, False),
    TopicSpec("dead_letter", "zhucan.dead-letter", None, "origin key", WORKER, 90 * DAY_MS, False, keyed=False),
    # The person table's changelog (compacted only, never deleted by time): created here with the
    # others, so its replication is zhucan's and not Faust's default; Faust finds it existing.
    TopicSpec("person_changelog", "zhucan.person-changelog", None, "person token", WORKER, None, False),
    TopicSpec("control_progress", "zhucan.control-progress", None, "command id", WORKER, 7 * DAY_MS, False,
              keyed=False),
    # what the offset guards did (streams/runtime/applied.py): a gap filled, a stalled commit healed
    TopicSpec("offset_repairs", "zhucan.offset-repairs", None, "topic[partition]", WORKER, 30 * DAY_MS, False,
              keyed=False),
    # ledgers of what was done once: compacted, kept
    TopicSpec("dead_letter_replays", "zhucan.dead-letter-replays", None, "origin", "operator", None, False),
    # policy revisions: candidate policy files sent by `zhucan policy diff` (JSON), each worker
    # partition's answer (what a REDECIDE with them would do; masked IDs only), and the policy ids
    # each running worker holds (one record per worker, replaced as it goes)
    TopicSpec("policy_candidates", "zhucan.policy-candidates", None, "preview id", "operator", 7 * DAY_MS, False,
              keyed=False),
    TopicSpec("policy_previews", "zhucan.policy-previews", None, "preview id", WORKER, 7 * DAY_MS, False,
              keyed=False),
    TopicSpec("worker_policies", "zhucan.worker-policies", None, "worker id", WORKER, None, False, keyed=False),
    # the county bureaus' claim files (`zhucan import --claims`): digests and counts, like a department's
    TopicSpec("claim_imports", "zhucan.imports.county-bureau", None, "file digest", "county-bureau", None, False),
    # the ledger's totals: each partition's snapshot in the same partition (a report reads the
    # last record of each), compacted
    TopicSpec("ledger_totals", "zhucan.ledger-totals", None, "person-topic partition", WORKER, None, False),
)


def import_ledger(d: Department) -> TopicSpec:
    """A department's import ledger (``zhucan import``): compacted, kept, written by that department only."""
    return TopicSpec(f"imports:{d.source}", d.imports_topic, None, "file digest", d.slug, None, False)


class Topics:
    """Every topic name, with the deployment prefix applied: ``topics.fee_standard``,
    ``topics.identity[source]``; ``specs`` gives the whole list."""

    def __init__(self, prefix: str = "", departments: tuple[Department, ...] = DEPARTMENTS,
                 extra: tuple[TopicSpec, ...] = ()) -> None:
        self.prefix = prefix
        pairs = [department_topics(d) for d in departments]
        # in the contract's order: the departments' topics, identity.rejected.v1 (TOPICS[0]) and
        # each department's own rejections after it, then the rest (``extra``: topics a test adds)
        self.specs = (tuple(identity for identity, _ in pairs) + TOPICS[:1] + tuple(own for _, own in pairs)
                      + TOPICS[1:] + extra + tuple(import_ledger(d) for d in departments))
        self.identity = {d.source: prefix + d.topic for d in departments}
        self.rejected_of = {d.source: prefix + d.rejected_topic for d in departments}
        self.imports_of = {d.source: prefix + d.imports_topic for d in departments}
        self._by_topic = {prefix + d.topic: d.source for d in departments}
        for spec in (*TOPICS, *extra):
            setattr(self, spec.attr, prefix + spec.name)
        self.effects = effect_topics(self.specs)  # an effect's class -> its topic

    # typed names (set in __init__ from TOPICS)
    rejected: str
    fee_standard: str
    payment_status: str
    review: str
    unenrolled: str
    settlement: str
    control: str
    claims: str
    claim_decisions: str
    instructions: str
    other_channel: str
    ledger: str
    person_commands: str
    dead_letter: str
    person_changelog: str
    control_progress: str
    offset_repairs: str
    dead_letter_replays: str
    policy_candidates: str
    policy_previews: str
    worker_policies: str
    claim_imports: str
    ledger_totals: str

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


def effect_topics(specs: tuple[TopicSpec, ...] = TOPICS) -> dict[type, TopicSpec]:
    """An effect's class -> the topic that publishes it."""
    return {s.effect: s for s in specs if s.effect is not None}


@lru_cache(maxsize=64)
def topics_for(prefix: str, departments: tuple[Department, ...] = DEPARTMENTS,
               extra: tuple[TopicSpec, ...] = ()) -> Topics:
    return Topics(prefix, departments, extra)
