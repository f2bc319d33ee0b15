"""The domain stays free of I/O frameworks (STYLE.md)."""

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[2] / "streams" / "domain"
FORBIDDEN = {"faust", "kafka", "aiokafka", "fastavro", "mode"}


def test_domain_imports_no_stream_or_kafka_library():
    offenders = []
    for path in DOMAIN.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN]
    assert offenders == []
