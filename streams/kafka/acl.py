"""Principals and their ACLs as data (``deploy/acl.yaml``), and making a cluster match them.

``grants`` turns the file into the exact set of ACL bindings it means (pure: the file, the topic
list and the deployment prefix in, bindings out); ``apply_acls`` adds what a cluster lacks and
removes what it has beyond the file, for the file's principals only, so a second run changes
nothing. Every grant is an ALLOW on host "*": with ``allow.everyone.if.no.acl.found=false``
anything not granted is refused.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kafka.admin import (
    ACL,
    ACLFilter,
    ACLOperation,
    ACLPermissionType,
    ACLResourcePatternType,
    ResourcePattern,
    ResourcePatternFilter,
    ResourceType,
    UserScramCredentialUpsertion,
)

from streams.domain.departments import Department
from streams.kafka.admin import admin_client
from streams.kafka.topics import Topics

log = logging.getLogger(__name__)

ACL_FILE = Path(__file__).resolve().parents[2] / "deploy" / "acl.yaml"

# a grant's word in the file -> (resource type, operation)
GRANTS: dict[str, tuple[str, str]] = {
    "read": ("TOPIC", "READ"),
    "write": ("TOPIC", "WRITE"),
    "describe": ("TOPIC", "DESCRIBE"),
    "describe_configs": ("TOPIC", "DESCRIBE_CONFIGS"),
    "create": ("TOPIC", "CREATE"),
    "groups": ("GROUP", "READ"),
    "describe_groups": ("GROUP", "DESCRIBE"),
}


class AclFileError(ValueError):
    """The ACL file is malformed; the message names the principal and the entry."""


@dataclass(frozen=True, order=True)
class Binding:
    """One ALLOW rule: ``principal`` may ``operation`` on the resource (a prefix when ``prefixed``)."""

    principal: str  # "User:<name>"
    resource: str  # TOPIC | GROUP (the file's); on a cluster also CLUSTER, TRANSACTIONAL_ID, ...
    name: str
    prefixed: bool
    operation: str
    host: str = "*"  # the file grants from any host; a cluster's ALLOW from one host is not the file's

    def __str__(self) -> str:
        pattern = f"{self.name}*" if self.prefixed else self.name
        where = "" if self.host == "*" else f" from host {self.host}"
        return f"{self.principal} {self.operation} {self.resource.lower()} {pattern}{where}"


def load_acl_file(path: Path = ACL_FILE) -> dict[str, Any]:
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise AclFileError(f"{path}: {exc.strerror}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("principals"), dict):
        raise AclFileError(f"{path}: needs a `principals:` mapping")
    return doc


def principals(doc: Mapping[str, Any], departments: Iterable[Department]) -> dict[str, dict[str, list[str]]]:
    """Principal name -> its grants, the department template expanded once per department."""
    out: dict[str, dict[str, list[str]]] = {}
    template = doc.get("departments")
    if template:
        for d in departments:
            name = str(template["principal"]).replace("{slug}", d.slug)
            out[name] = {k: [str(v).replace("{slug}", d.slug) for v in vs]
                         for k, vs in template.items() if k != "principal"}
    for name, grants in doc["principals"].items():
        if name in out:
            raise AclFileError(f"principal {name!r} is listed twice (a department has that name)")
        out[str(name)] = {k: [str(v) for v in vs] for k, vs in (grants or {}).items()}
    return out


def _names(entry: str, topics: Topics, app_id: str, slugs: list[str]) -> list[tuple[str, bool]]:
    """A file entry -> [(resource name with the deployment prefix, prefixed?)]."""
    if entry == "{all}":
        return [(topics.name(s), False) for s in topics.specs]
    # ZHUCAN_APP_ID is a whole name already (the worker's groups, Faust's own topics)
    prefix = "" if entry.startswith("{app}") else topics.prefix
    entry = entry.replace("{app}", app_id)
    names = [entry.replace("{slug}", s) for s in slugs] if "{slug}" in entry else [entry]
    return [(prefix + n[:-1], True) if n.endswith("*") else (prefix + n, False) for n in names]


def grants(doc: Mapping[str, Any], topics: Topics, departments: tuple[Department, ...], app_id: str) -> set[Binding]:
    """Every ACL binding the file means, for this deployment (prefix, app id, departments)."""
    slugs = [d.slug for d in departments]
    out: set[Binding] = set()
    for name, entries in principals(doc, departments).items():
        for word, values in entries.items():
            if word not in GRANTS:
                raise AclFileError(f"principal {name!r}: unknown grant {word!r} (known: {', '.join(GRANTS)})")
            resource, operation = GRANTS[word]
            for value in values:
                for rname, prefixed in _names(value, topics, app_id, slugs):
                    if not rname:
                        raise AclFileError(f"principal {name!r}: {word} entry {value!r} names nothing")
                    out.add(Binding(f"User:{name}", resource, rname, prefixed, operation))
    return out


def _to_kafka(b: Binding) -> ACL:
    pattern = ACLResourcePatternType.PREFIXED if b.prefixed else ACLResourcePatternType.LITERAL
    return ACL(principal=b.principal, host=b.host, operation=ACLOperation[b.operation],
               permission_type=ACLPermissionType.ALLOW,
               resource_pattern=ResourcePattern(ResourceType[b.resource], b.name, pattern))


def _from_kafka(acl: ACL) -> Binding | None:
    """A cluster's ALLOW as a Binding, whatever its resource (cluster, topic, group,
    transactional id, ...) and host: the file's principals hold exactly what the file grants, so
    any ALLOW the file does not grant is removed (issue #20: a cluster-level ALLOW ALL was left
    alone). None for a DENY: it only takes away, and stays (listed)."""
    p = acl.resource_pattern
    if acl.permission_type != ACLPermissionType.ALLOW:
        return None
    return Binding(acl.principal, p.resource_type.name, p.resource_name,
                   p.pattern_type == ACLResourcePatternType.PREFIXED, acl.operation.name, acl.host)


def current(admin: Any, principal: str) -> tuple[set[Binding], list[ACL]]:
    """What the cluster grants ``principal`` now: the bindings the file can express, and the
    ACLs it cannot (left alone, and reported)."""
    acls, _ = admin.describe_acls(ACLFilter(
        principal=principal, host=None, operation=ACLOperation.ANY, permission_type=ACLPermissionType.ANY,
        resource_pattern=ResourcePatternFilter(ResourceType.ANY, None, ACLResourcePatternType.ANY)))
    known, other = set(), []
    for acl in acls:
        b = _from_kafka(acl)
        if b is None:
            other.append(acl)
        else:
            known.add(b)
    return known, other


@dataclass
class AclPlan:
    add: list[Binding]
    remove: list[Binding]
    untouched: list[str]  # the DENY rules of the file's principals: they only take away, and stay


def plan(admin: Any, wanted: set[Binding]) -> AclPlan:
    have: set[Binding] = set()
    untouched: list[str] = []
    for principal in sorted({b.principal for b in wanted}):
        known, other = current(admin, principal)
        have |= known
        untouched += [str(a) for a in other]
    return AclPlan(sorted(wanted - have), sorted(have - wanted), untouched)


def apply_acls(bootstrap: str, wanted: set[Binding], dry_run: bool = False) -> AclPlan:
    """Make the cluster's ACLs of the principals in ``wanted`` equal ``wanted``."""
    admin = admin_client(bootstrap)
    try:
        p = plan(admin, wanted)
        if dry_run:
            return p
        if p.add:
            result = admin.create_acls([_to_kafka(b) for b in p.add])
            if result["failed"]:
                raise RuntimeError(f"Kafka refused {len(result['failed'])} of {len(p.add)} ACLs: "
                                   f"{sorted({type(e).__name__ for e in result['failed']})}")
        if p.remove:
            filters = [_to_kafka(b) for b in p.remove]  # an ACL is its own exact filter
            for _, _, error in admin.delete_acls(filters):
                if error.__name__ != "NoError":
                    raise RuntimeError(f"Kafka refused to delete ACLs: {error.__name__}")
        log.info("ACLs: %d added, %d removed", len(p.add), len(p.remove))
        return p
    finally:
        admin.close()


def set_password(bootstrap: str, user: str, password: str) -> None:
    """Create or replace ``user``'s SCRAM-SHA-512 credential (as a super user). Connections already
    authenticated stay up until they reconnect."""
    admin = admin_client(bootstrap)
    try:
        result = admin.alter_user_scram_credentials([UserScramCredentialUpsertion(user, "SCRAM-SHA-512", password)])
        if result.get(user):
            raise RuntimeError(f"Kafka refused the new password of {user!r}: {result[user]}")
    finally:
        admin.close()
