"""The shipped region-year policies (``*.yaml``), the notices they quote, and the one reader of policy files.

The domain validates and decides (``streams.domain.policy``); reading files and YAML happens
here, so the domain stays free of I/O (``tests/unit/streams/domain/test_purity.py``).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from streams.domain.departments import SHIPPED, Departments
from streams.domain.exceptions import PolicyError
from streams.domain.policy.spec import PolicyBook

SHIPPED_POLICY_DIR = Path(__file__).resolve().parent


def load_book(directory: Path | str | None = None, departments: Departments = SHIPPED) -> PolicyBook:
    """Read and validate every ``*.yaml`` of ``directory`` (default: the shipped policies), for
    ``departments`` (the settings' ``registry``); raise PolicyError naming every problem, each
    with its file."""
    directory = Path(directory) if directory else SHIPPED_POLICY_DIR
    if not directory.is_dir():
        raise PolicyError(f"{directory}: policy directory does not exist")
    documents: list[tuple[str, object]] = []
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        text = path.read_text(encoding="utf-8")
        if not text.strip():
            problems.append(f"{path}: empty file")
            continue
        try:
            documents.append((str(path), yaml.safe_load(text)))
        except yaml.YAMLError as exc:
            problems.append(f"{path}: not valid YAML: {exc}")
    try:
        book = PolicyBook.from_documents(documents, departments)
    except PolicyError as exc:
        problems.append(str(exc))
        book = None
    if problems:
        raise PolicyError("\n".join(problems))
    if book is None or not len(book):
        raise PolicyError(f"{directory}: no policy files (*.yaml)")
    return book
