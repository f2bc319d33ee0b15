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


def parse_documents(named_texts: list[tuple[str, str]]) -> list[tuple[str, object]]:
    """(name, YAML text) -> (name, parsed document); PolicyError naming every file that is empty
    or not YAML."""
    documents: list[tuple[str, object]] = []
    problems: list[str] = []
    for name, text in named_texts:
        if not text.strip():
            problems.append(f"{name}: empty file")
            continue
        try:
            documents.append((name, yaml.safe_load(text)))
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML: {exc}")
    if problems:
        raise PolicyError("\n".join(problems))
    return documents


def read_texts(directory: Path | str | None = None) -> list[tuple[str, str]]:
    """Every ``*.yaml`` of ``directory`` (default: the shipped policies) as (path, text)."""
    directory = Path(directory) if directory else SHIPPED_POLICY_DIR
    if not directory.is_dir():
        raise PolicyError(f"{directory}: policy directory does not exist")
    return [(str(path), path.read_text(encoding="utf-8")) for path in sorted(directory.glob("*.yaml"))]


def load_book(directory: Path | str | None = None, departments: Departments = SHIPPED) -> PolicyBook:
    """Read and validate every ``*.yaml`` of ``directory`` (default: the shipped policies), for
    ``departments`` (the settings' ``registry``); raise PolicyError naming every problem, each
    with its file."""
    documents = parse_documents(read_texts(directory))
    book = PolicyBook.from_documents(documents, departments)
    if not len(book):
        raise PolicyError(f"{directory or SHIPPED_POLICY_DIR}: no policy files (*.yaml)")
    return book
