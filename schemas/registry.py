"""A small Confluent schema-registry client (REST, standard library only).

Used only when a registry URL is configured; subjects are ``<topic>-value``.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from typing import Any

from schemas.exceptions import RegistryError

_CT = "application/vnd.schemaregistry.v1+json"


class SchemaRegistryClient:
    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout
        self._ids: dict[tuple[str, str], int] = {}
        self._by_id: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": _CT, "Accept": _CT}
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise RegistryError(f"{method} {path}: HTTP {exc.code} {exc.read()[:200]!r}") from exc
        except OSError as exc:
            raise RegistryError(f"{method} {path}: {exc}") from exc

    def register(self, subject: str, schema: dict[str, Any]) -> int:
        """Register (or look up) ``schema`` under ``subject``; returns its global id."""
        text = json.dumps(schema, sort_keys=True)
        key = (subject, text)
        with self._lock:
            if key in self._ids:
                return self._ids[key]
        result = self._call("POST", f"/subjects/{subject}/versions", {"schema": text})
        schema_id = int(result["id"])
        with self._lock:
            self._ids[key] = schema_id
            self._by_id[schema_id] = schema
        return schema_id

    def set_compatibility(self, subject: str, level: str = "BACKWARD") -> None:
        self._call("PUT", f"/config/{subject}", {"compatibility": level})

    def get_schema(self, schema_id: int) -> dict[str, Any]:
        with self._lock:
            if schema_id in self._by_id:
                return self._by_id[schema_id]
        result = self._call("GET", f"/schemas/ids/{schema_id}")
        schema = json.loads(result["schema"])
        with self._lock:
            self._by_id[schema_id] = schema
        return schema
