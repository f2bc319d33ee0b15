"""The departments that report identities: one entry each, the only place a department is named.

An entry gives the department's symbol (``IdentityEvent.source`` in ``schemas/identity_event.avsc``
and ``rejection.avsc``), its topic ``identity.<slug>.v1`` (CONTRACT.md), its Chinese name, and
the categories it certifies. Everything else reads this list: the topics created and consumed
(``streams/kafka/topics.py``), the intake's topic -> source map, validation
(CATEGORY_NOT_OF_SOURCE), the ``basis`` text, and ``zhucan import --source <slug>``.
Adding a department is one entry here plus the schema's new symbol
(``tests/agents/test_fifth_department.py`` adds one in a fixture and runs it through the worker).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

from streams.domain.enums import Category

C = Category


@dataclass(frozen=True)
class Department:
    source: str  # the symbol in IdentityEvent.source
    slug: str  # topic identity.<slug>.v1; the name `zhucan import --source` takes
    zh: str
    categories: tuple[Category, ...]

    @property
    def topic(self) -> str:
        """Its topic, without the deployment prefix."""
        return f"identity.{self.slug}.v1"

    @property
    def rejected_topic(self) -> str:
        """Its own rejections (CONTRACT additions 2026-12): only this department reads them."""
        return f"identity.rejected.{self.slug}.v1"

    @property
    def imports_topic(self) -> str:
        """Its own import ledger (file digests and counts, no person data): only this department
        writes it, so no other can mark its file as imported (issue #20)."""
        return f"zhucan.imports.{self.slug}"


DEPARTMENTS: tuple[Department, ...] = (
    Department("CIVIL_AFFAIRS", "civil-affairs", "民政",
               (C.EXTREME_POVERTY, C.MINIMUM_LIVING, C.LOW_INCOME_MARGINAL, C.ORPHAN, C.DE_FACTO_UNSUPPORTED_CHILD,
                C.ILLNESS_INDUCED_POVERTY)),
    Department("RURAL_REVITALIZATION", "rural-revitalization", "乡村振兴",
               (C.MONITORED_RELAPSE_RISK, C.RELAPSED_INTO_POVERTY, C.STABLY_OUT_OF_POVERTY, C.REGISTERED_POOR)),
    Department("DISABILITY", "disability", "残联", (C.SEVERE_DISABILITY, C.GENERAL_DISABILITY)),
    Department("VETERANS", "veterans", "退役军人", (C.ENTITLED_VETERAN,)),
)


class Departments:
    """The department list, indexed (built once per worker; read on the hot path)."""

    def __init__(self, departments: tuple[Department, ...] = DEPARTMENTS) -> None:
        sources = [d.source for d in departments]
        slugs = [d.slug for d in departments]
        if len(set(sources)) != len(sources) or len(set(slugs)) != len(slugs):
            raise ValueError(f"departments must have distinct sources and slugs: {sources}, {slugs}")
        self.all = departments
        self.by_source = {d.source: d for d in departments}
        self.by_slug = {d.slug: d for d in departments}
        reporters: dict[Category, list[str]] = {}
        for d in departments:
            for category in d.categories:
                reporters.setdefault(category, []).append(d.source)
        self.reporters = {c: tuple(s) for c, s in reporters.items()}

    def reports(self, source: str, category: Category) -> bool:
        """Whether ``source`` may report ``category`` (else CATEGORY_NOT_OF_SOURCE)."""
        return source in self.reporters.get(category, ())

    def reporters_text(self, category: Category) -> str:
        return "/".join(self.reporters.get(category, ())) or "no department"

    def zh_of(self, source: str) -> str:
        """A department's Chinese name (its symbol when it is none of these)."""
        department = self.by_source.get(source)
        return department.zh if department is not None else source

    @cached_property
    def zh_of_category(self) -> dict[Category, str]:
        """The departments' Chinese names by the category they report (for ``basis``)."""
        return {c: "/".join(self.by_source[s].zh for s in sources) for c, sources in self.reporters.items()}


SHIPPED = Departments()
