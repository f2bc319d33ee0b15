from __future__ import annotations

import os

import pytest

from tests.integration.broker import provide_broker
from tests.integration.fixtures import Stack, full_ids

# Every worker the tests start (they inherit the environment): a killed worker's partitions move
# after 10 s instead of Faust's 60 (the kill-and-restart tests wait on it; nothing they assert
# depends on it).
os.environ.setdefault("ZHUCAN_TUNING__SESSION_TIMEOUT_S", "10")


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)
    # `make test` runs on two processes: the long tests go first, so both end at about the same time.
    items.sort(key=lambda item: item.get_closest_marker("long") is None)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """The no-full-ID sweep (issue #13): whatever an integration test captured (the CLI's output
    run in-process, every logger's lines, the worker log tails the fixtures print) must not
    hold a full ID number; a test that passed otherwise fails here."""
    outcome = yield
    report = outcome.get_result()
    if "/integration/" not in str(item.fspath) or not report.passed:
        return
    leaked = full_ids("\n".join(content for name, content in report.sections if name.endswith(report.when)))
    if leaked:
        report.outcome = "failed"
        report.longrepr = f"full ID numbers in the captured output or log ({report.when}): {leaked[:5]}"


@pytest.fixture(scope="session")
def kafka_bootstrap():
    with provide_broker() as (bootstrap, how):
        print(f"\n[zhucan tests] Kafka at {bootstrap} ({how})")
        if how == "KAFKA_BOOTSTRAP_SERVERS":
            Stack.given_broker = bootstrap
        yield bootstrap


@pytest.fixture
def stack(kafka_bootstrap, tmp_path):
    s = Stack(kafka_bootstrap, tmp_path)
    yield s
    s.close()


@pytest.fixture
def running(stack):
    """A stack with its worker running."""
    stack.start_worker()
    yield stack
    print("---- worker log (tail) ----\n" + "\n".join(stack.worker_log().splitlines()[-60:]))
