"""deploy/acl.yaml -> the exact ACL bindings (pure; applying them is in tests/integration/test_security.py)."""

from __future__ import annotations

import pytest

from streams.domain.departments import DEPARTMENTS
from streams.kafka.acl import AclFileError, Binding, grants, load_acl_file
from streams.kafka.topics import WORKER, topics_for


def shipped(prefix: str = "") -> set[Binding]:
    return grants(load_acl_file(), topics_for(prefix), DEPARTMENTS, "zhucan")


def allowed(bindings: set[Binding], user: str, operation: str) -> set[str]:
    """The topics ``user`` may ``operation`` ("name*" for a prefix)."""
    return {b.name + ("*" if b.prefixed else "") for b in bindings
            if b.principal == f"User:{user}" and b.operation == operation and b.resource == "TOPIC"}


def test_each_department_writes_only_its_own_topic_and_reads_only_its_own_rejections():
    b = shipped()
    for d in DEPARTMENTS:
        assert allowed(b, d.slug, "WRITE") == {d.topic, d.imports_topic}  # no other department's ledger
        assert allowed(b, d.slug, "READ") == {d.rejected_topic, d.imports_topic}
        groups = {x for x in b if x.principal == f"User:{d.slug}" and x.resource == "GROUP"}
        assert {(g.name, g.prefixed) for g in groups} == {(d.slug, True)}


def test_the_parties_of_the_issue():
    b = shipped()
    # tax also reads the instructions it pays (TAX_REFUND: late-data refunds, CONTRACT additions 2026-12)
    assert allowed(b, "tax", "READ") == {"fee-standard.v1", "unenrolled.suspected.v1", "payment-instruction.v1"}
    assert allowed(b, "tax", "WRITE") == {"payment-status.v1"}
    assert allowed(b, "finance", "READ") == {"settlement.v1", "payment-instruction.v1"}
    assert allowed(b, "finance", "WRITE") == set()
    # with its claim files' import ledger (`zhucan import --claims`: file digests and counts)
    assert allowed(b, "county-bureau", "WRITE") == {"subsidy-claim.v1", "zhucan.imports.county-bureau"}
    assert allowed(b, "county-bureau", "READ") == {"subsidy-claim.decided.v1", "zhucan.imports.county-bureau"}
    assert allowed(b, "other-funders", "WRITE") == {"subsidy.other-channel.v1"}
    assert "control.v1" in allowed(b, "operator", "WRITE")
    assert not {d.topic for d in DEPARTMENTS} & (allowed(b, "operator", "WRITE") | allowed(b, "operator", "READ"))
    assert allowed(b, "operator", "DESCRIBE") >= {d.topic for d in DEPARTMENTS}  # lag, not data
    worker_writes = allowed(b, "zhucan-worker", "WRITE")
    assert "control.v1" not in worker_writes and "payment-status.v1" not in worker_writes
    assert not {d.topic for d in DEPARTMENTS} & worker_writes
    assert allowed(b, "zhucan-worker", "READ") >= {d.topic for d in DEPARTMENTS}
    assert allowed(b, "zhucan-worker", "READ") >= {"subsidy-claim.v1", "subsidy.other-channel.v1"}
    assert worker_writes >= {"subsidy-claim.decided.v1", "payment-instruction.v1"}
    assert "subsidy-claim.v1" not in worker_writes and "subsidy.other-channel.v1" not in worker_writes


def test_no_one_but_zhucan_and_operators_reads_every_departments_rejections():
    b = shipped()
    readers = {x.principal for x in b if x.name == "identity.rejected.v1" and x.operation == "READ"}
    assert readers == {"User:operator"}


def test_the_deployment_prefix_goes_on_topics_and_groups_but_not_on_the_app_id():
    b = shipped("prod.")
    assert allowed(b, "tax", "WRITE") == {"prod.payment-status.v1"}
    tax_groups = {(x.name, x.prefixed) for x in b if x.principal == "User:tax" and x.resource == "GROUP"}
    assert tax_groups == {("prod.tax", True)}
    worker_groups = {x.name for x in b if x.principal == "User:zhucan-worker" and x.resource == "GROUP"}
    assert worker_groups == {"zhucan", "zhucan-streams"}


@pytest.mark.parametrize(("doc", "named"), [
    ({"principals": {"tax": {"writ": ["payment-status.v1"]}}}, "unknown grant 'writ'"),
    ({"principals": {"tax": {"read": ["*"]}}}, "names nothing"),
    ({"departments": {"principal": "{slug}"}, "principals": {"veterans": {}}}, "listed twice"),
])
def test_a_malformed_file_is_named(doc, named):
    with pytest.raises(AclFileError, match=named):
        grants(doc, topics_for(""), DEPARTMENTS, "zhucan")


def test_a_file_without_principals_is_refused(tmp_path):
    f = tmp_path / "acl.yaml"
    f.write_text("departments: {}\n")
    with pytest.raises(AclFileError, match="principals"):
        load_acl_file(f)


def _writers(bindings: set[Binding], topic: str) -> set[str]:
    """The principals the bindings let write ``topic`` (a literal or a prefix grant)."""
    return {b.principal.removeprefix("User:") for b in bindings if b.resource == "TOPIC" and b.operation == "WRITE"
            and (topic.startswith(b.name) if b.prefixed else topic == b.name)}


@pytest.mark.parametrize("prefix", ["", "prod."])
def test_every_topic_is_written_by_the_principal_its_spec_names_and_no_other(prefix):
    """The ACL file is tested against the topic list (issue #21): the spec's ``writer`` may write
    it, and no one else may, but zhucan's own principal on its internal ``zhucan.*`` topics."""
    topics = topics_for(prefix)
    b = shipped(prefix)
    for spec in topics.specs:
        name = topics.name(spec)
        writers = _writers(b, name)
        assert spec.writer in writers, spec
        assert writers - {spec.writer} <= ({WORKER} if spec.name.startswith("zhucan.") else set()), (spec, writers)
    assert _writers(b, topics.name(topics.specs[0])) == {topics.specs[0].writer}  # a department's own
