"""The domain stays pure (STYLE.md): no stream or Kafka library, no YAML, no file or network I/O.

Reading the policy files is ``streams/policies``; the clock is passed in."""

import ast
from pathlib import Path

DOMAIN = Path(__file__).resolve().parents[4] / "streams" / "domain"
FORBIDDEN_MODULES = {"faust", "kafka", "aiokafka", "fastavro", "mode", "yaml", "pathlib", "os", "io", "shutil",
                     "socket", "urllib", "http", "subprocess", "glob", "tempfile", "sqlite3", "rocksdict", "time"}
FORBIDDEN_CALLS = {"open", "read_text", "write_text", "read_bytes", "write_bytes", "glob", "iterdir", "mkdir",
                   "unlink", "now", "today", "utcnow", "time"}


def _domain_files() -> list[Path]:
    files = sorted(DOMAIN.rglob("*.py"))
    assert len(files) >= 12, files  # the whole domain, policy/ included
    return files


def test_domain_imports_no_stream_kafka_yaml_or_io_library():
    offenders = []
    for path in _domain_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [f"{path.name}: {n}" for n in names if n.split(".")[0] in FORBIDDEN_MODULES]
    assert offenders == []


def test_domain_reads_no_file_and_no_clock():
    offenders = []
    for path in _domain_files():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                if name in FORBIDDEN_CALLS:
                    offenders.append(f"{path.name}:{node.lineno}: {name}()")
    assert offenders == []


def test_the_check_sees_a_file_read(tmp_path):
    """The checks above would notice: a module that opens a file is caught."""
    bad = ast.parse("from pathlib import Path\nPath('x').read_text()\n")
    calls = [n.func.attr for n in ast.walk(bad) if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)]
    imports = [n.module for n in ast.walk(bad) if isinstance(n, ast.ImportFrom)]
    assert "read_text" in calls and "pathlib" in imports
