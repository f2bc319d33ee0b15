from __future__ import annotations

import pytest

from tests.integration.broker import provide_broker
from tests.integration.fixtures import Stack


def pytest_collection_modifyitems(items):
    for item in items:
        if "/integration/" in str(item.fspath):
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def kafka_bootstrap():
    with provide_broker() as (bootstrap, how):
        print(f"\n[zhucan tests] Kafka at {bootstrap} ({how})")
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
