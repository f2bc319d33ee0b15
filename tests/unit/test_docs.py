"""The docs say what the code does (issue #21): the README's topic table is generated from the
topic list, and the configuration table in docs/operations.md names every setting and no other."""

from __future__ import annotations

import re
from pathlib import Path

from connectors.ops.doc_tables import README, readme_table, topic_table
from streams.kafka.security import KafkaSecurity
from streams.settings import Settings, Tuning

OPERATIONS = Path(__file__).resolve().parents[2] / "docs" / "operations.md"
# read by the embedded broker, the importer and the bench, not by Settings
OTHER_VARIABLES = {"ZHUCAN_KAFKA_DIR", "ZHUCAN_KAFKA_PORT", "ZHUCAN_IMPORT_KEY", "ZHUCAN_BENCH_PROFILE", "ZHUCAN_NATIVE"}
NOT_VARIABLES = {"departments", "extra_topics", "faults", "kafka", "tuning"}  # set in code (tests), or nested


def test_the_readmes_topic_table_is_the_topic_list():
    assert readme_table(README.read_text(encoding="utf-8")) == topic_table(), (
        "README's topic table differs from streams/kafka/topics.py: run python -m connectors.ops.doc_tables --write")


def _configuration_table() -> str:
    text = OPERATIONS.read_text(encoding="utf-8")
    section = text[text.index("## Configuration"):]
    return section[:section.index("\n## ", 3)]


def test_the_configuration_table_names_every_setting_and_no_other():
    table = _configuration_table()
    named = set(re.findall(r"`((?:ZHUCAN|KAFKA)_[A-Z_]+)", table))
    wanted = {"KAFKA_BOOTSTRAP_SERVERS", "ZHUCAN_TUNING__"}
    wanted |= {f"ZHUCAN_{name.upper()}" for name in Settings.model_fields
               if name not in NOT_VARIABLES and name != "kafka_bootstrap_servers"}
    wanted |= {f"KAFKA_{name.upper()}" for name in KafkaSecurity.model_fields}
    wanted |= OTHER_VARIABLES
    assert wanted - named == set(), "settings missing from docs/operations.md"
    assert named - wanted == set(), "docs/operations.md names variables no setting reads"
    knobs = set(re.findall(r"`([A-Z][A-Z0-9_]+)` \d", table))  # the knobs the tuning row names, with their defaults
    assert knobs and knobs <= {name.upper() for name in Tuning.model_fields}
