"""The one topic list (streams/kafka/topics.py): names, configs, and what admin creates."""

from streams.kafka.topics import TOPICS, Topics
from streams.settings import Settings


def test_the_contracts_topic_names():
    t = Topics()
    assert t.contract() == [
        "identity.civil-affairs.v1", "identity.rural-revitalization.v1", "identity.disability.v1",
        "identity.veterans.v1", "identity.rejected.v1", "identity.rejected.civil-affairs.v1",
        "identity.rejected.rural-revitalization.v1", "identity.rejected.disability.v1", "identity.rejected.veterans.v1",
        "fee-standard.v1", "payment-status.v1", "review.v1",
        "unenrolled.suspected.v1", "settlement.v1", "control.v1", "subsidy-claim.v1", "subsidy-claim.decided.v1",
        "payment-instruction.v1", "subsidy.other-channel.v1", "ledger.v1"]
    assert t.internal() == ["zhucan.person-commands", "zhucan.dead-letter", "zhucan.person-changelog",
                            "zhucan.control-progress", "zhucan.offset-repairs", "zhucan.dead-letter-replays",
                            "zhucan.policy-candidates", "zhucan.policy-previews", "zhucan.worker-policies",
                            "zhucan.imports.county-bureau", "zhucan.ledger-totals", "zhucan.imports.civil-affairs", "zhucan.imports.rural-revitalization",
                            "zhucan.imports.disability", "zhucan.imports.veterans"]


def test_configs_keep_every_fee_version_and_compact_only_ledgers():
    configs = Topics("p.").configs()
    assert configs["p.fee-standard.v1"] == {"cleanup.policy": "delete", "retention.ms": str(400 * 86_400_000),
                                           "retention.bytes": "-1"}
    assert configs["p.zhucan.imports.civil-affairs"] == {"cleanup.policy": "compact", "retention.bytes": "-1"}
    # the changelog is created by zhucan (its replication is zhucan's), compacted only
    assert configs["p.zhucan.person-changelog"] == {"cleanup.policy": "compact", "retention.bytes": "-1"}
    # the ledger (台账) keeps one line per person-year, its totals one snapshot per partition
    assert configs["p.ledger.v1"] == configs["p.zhucan.ledger-totals"] == {"cleanup.policy": "compact",
                                                                          "retention.bytes": "-1"}
    assert len(configs) == len(Topics().specs)


def test_keyed_topics_are_those_whose_partition_a_key_decides():
    unkeyed = {s.name for s in Topics().specs if not s.keyed}
    assert unkeyed == {"identity.civil-affairs.v1", "identity.rural-revitalization.v1", "identity.disability.v1",
                       "identity.veterans.v1", "control.v1", "zhucan.dead-letter", "zhucan.control-progress",
                       "zhucan.offset-repairs", "zhucan.policy-candidates", "zhucan.policy-previews",
                       "zhucan.worker-policies", "subsidy-claim.v1", "subsidy.other-channel.v1"}


def test_replication_defaults_to_three_or_the_brokers_with_one_less_in_sync():
    s = Settings()
    assert [s.replication(n) for n in (1, 2, 3, 5)] == [(1, 1), (2, 1), (3, 2), (3, 2)]
    assert Settings(replication_factor=5).replication(3) == (5, 4)
    assert Settings(replication_factor=3, min_insync_replicas=3).replication(1) == (3, 3)


def test_every_spec_has_a_distinct_name_and_attribute():
    specs = Topics().specs
    assert len({s.name for s in specs}) == len({s.attr for s in specs}) == len(specs)
    assert all(s.record is None or s.contract for s in TOPICS)  # contract topics carry contract records


def test_a_copied_settings_names_the_topics_of_its_own_prefix():
    base = Settings(topic_prefix="a.")
    assert base.topics.fee_standard == "a.fee-standard.v1"  # looked at before the copy
    copy = base.model_copy(update={"topic_prefix": "b."})
    assert copy.topics.fee_standard == "b.fee-standard.v1"
    assert copy.topics.identity["CIVIL_AFFAIRS"] == "b.identity.civil-affairs.v1"


def test_tuning_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("ZHUCAN_TUNING__INTAKE_MAX_RECORDS", "2000")
    assert Settings().tuning.intake_max_records == 2000
    assert Settings().tuning.person_take == 64


def test_the_topics_present_come_from_one_request_naming_them():
    """``present_topics``: as ``list_topics`` lists them (an unknown topic, or one this client may
    not describe, is not), from a metadata request naming only them: a worker's start decoded the
    whole cluster's metadata three times or more (0.14 s of CPU each on 2,500 topics)."""
    from streams.kafka.admin import present_topics

    class Admin:  # no list_topics: calling it fails the test
        def __init__(self) -> None:
            self.asked: list[list[str]] = []

        def describe_topics(self, topics):
            self.asked.append(topics)
            codes = {"ok": 0, "unknown": 3, "not-allowed": 29, "no-leader-yet": 5}
            return [{"name": t, "error_code": codes[t], "partitions": []} for t in topics]

    admin = Admin()
    assert present_topics(admin, ["unknown", "ok", "not-allowed", "no-leader-yet", "ok"]) == {"ok", "no-leader-yet"}
    assert admin.asked == [["no-leader-yet", "not-allowed", "ok", "unknown"]]
    assert present_topics(admin, []) == set() and len(admin.asked) == 1  # nothing asked: no request


def test_a_create_refused_for_an_unknown_controller_is_retried_with_a_new_client(monkeypatch):
    """kafka-python's admin client keeps the controller id it first learned: right after a node
    restarted, the controller it named was not in its metadata yet (UnknownBrokerIdError), and
    every retry with that client failed the same way for the whole two minutes (a full suite of
    2026-12-07, the three-node test). The retry after that error gets a new client."""
    from kafka.errors import UnknownBrokerIdError

    from streams.kafka import admin as admin_module
    from streams.settings import Settings

    clients: list[object] = []  # every client made, in order

    class FakeAdmin:
        def __init__(self) -> None:
            self.closed = False
            self.created: list[str] = []
            clients.append(self)

        def describe_cluster(self):
            return {"brokers": [{"node_id": 1}]}

        def describe_topics(self, topics):
            return [{"name": t, "error_code": 0 if t in self.created else 3, "partitions": []} for t in topics]

        def create_topics(self, topics):
            if len(clients) == 1:  # the first client's controller is one it does not know
                raise UnknownBrokerIdError(3)
            self.created += [t.name for t in topics]

        def close(self):
            self.closed = True

    monkeypatch.setattr(admin_module, "admin_client", lambda bootstrap, timeout_s=30.0: FakeAdmin())
    monkeypatch.setattr(admin_module.time, "sleep", lambda s: None)
    settings = Settings(kafka_bootstrap_servers="localhost:1", topic_prefix="t.")
    created = admin_module.ensure_faust_topics(settings, ["t.one", "t.two"])
    assert created == ["t.one", "t.two"]
    assert len(clients) == 2 and clients[1].created == ["t.one", "t.two"]  # type: ignore[attr-defined]
    assert all(c.closed for c in clients)  # type: ignore[attr-defined]  # the replaced client too
