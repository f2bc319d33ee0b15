"""The operator's side of a revision, without a broker: bad candidate files are refused before
anything reaches the workers, which region-years a preview covers, and when a policy covers one."""

from __future__ import annotations

import shutil

import pytest

from connectors.ops.revision import RevisionError, covered, request_preview, targets_of
from streams.policies import SHIPPED_POLICY_DIR
from streams.settings import Settings


def test_a_candidate_that_fails_validation_is_refused_before_any_worker_is_asked(tmp_path):
    bad = tmp_path / "bad"
    shutil.copytree(SHIPPED_POLICY_DIR, bad)
    path = bad / "410000-2025.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("coverage_target:", "coverage_targt:"), encoding="utf-8")
    # the broker named here does not exist: the refusal comes first, from the files alone
    with pytest.raises(RevisionError, match="410000-2025.yaml"):
        request_preview(Settings(kafka_bootstrap_servers="localhost:1"), bad, "410000", 2025)


def test_the_region_years_a_preview_covers():
    assert targets_of(SHIPPED_POLICY_DIR, None, None) == [("370000", 2025), ("410000", 2025), ("500000", 2020),
                                                          ("510400", 2022)]  # Weihai inside Shandong: once
    assert targets_of(SHIPPED_POLICY_DIR, "371000", None) == [("371000", 2025)]
    assert targets_of(SHIPPED_POLICY_DIR, "410102", None) == [("410102", 2025)]  # a county of Henan's file
    assert targets_of(SHIPPED_POLICY_DIR, None, 2030) == []


def test_a_policy_covers_its_region_and_the_counties_below_it():
    ids = ["410000-2025@abc", "371000-2025@def"]
    assert covered(ids, "410102", 2025) and covered(ids, "410000", 2025) and covered(ids, "371002", 2025)
    assert not covered(ids, "410102", 2026) and not covered(ids, "370102", 2025)
