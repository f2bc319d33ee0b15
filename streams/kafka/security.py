"""How every Kafka client of zhucan authenticates: one reading of the environment, one place
(``KafkaSecurity``, the nested ``Settings.kafka``; the password is a secret type, never printed).

    KAFKA_SECURITY_PROTOCOL   PLAINTEXT (default) | SSL | SASL_PLAINTEXT | SASL_SSL
    KAFKA_SASL_MECHANISM      SCRAM-SHA-512 (default with SASL) | SCRAM-SHA-256 | PLAIN
    KAFKA_SASL_USERNAME       the principal (User:<name>)
    KAFKA_SASL_PASSWORD       its password, or KAFKA_SASL_PASSWORD_FILE: a file holding it
    KAFKA_SSL_CAFILE          the CA that signed the brokers' certificates (PEM)

With none of them set, the embedded broker's credentials file is used when that broker was
started secured (``zhucan kafka up --secure`` writes ``<ZHUCAN_KAFKA_DIR>/credentials.json``,
mode 0600) and the client talks to it: its protocol, its CA, and the user named by
KAFKA_SASL_USERNAME (default: the file's ``default_user``) with that user's password.

Every client reads it through these functions (a test checks that no client is built without
them): kafka-python's (``kafka_python_config``: admin, producers, consumers of the CLI, the
simulators, the lag monitor, the bench), aiokafka's (``aiokafka_config``: the intake loop) and
Faust's (``faust_credentials``: the app's consumer and producer).
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

PROTOCOLS = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
MECHANISMS = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


class SecurityConfigError(ValueError):
    """A KAFKA_* security variable is missing or wrong; the message names it."""


CREDENTIALS_FILE = "credentials.json"


def embedded_home(env: Mapping[str, str] | None = None) -> Path:
    """Where the embedded broker (``zhucan kafka up``) keeps its data, TLS files and credentials."""
    env = os.environ if env is None else env
    if env.get("ZHUCAN_KAFKA_DIR"):
        return Path(env["ZHUCAN_KAFKA_DIR"])
    base = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "zhucan" / "kafka"


def embedded_credentials(bootstrap: str | None, env: Mapping[str, str] | None = None) -> dict[str, Any] | None:
    """The secured embedded broker's (or secured local cluster's, ``cluster-<n>/``) credentials
    file, if there is one and ``bootstrap`` (or KAFKA_BOOTSTRAP_SERVERS) names that broker; None
    otherwise."""
    env = os.environ if env is None else env
    home = embedded_home(env)
    for path in [home / CREDENTIALS_FILE, *sorted(home.glob(f"cluster-*/{CREDENTIALS_FILE}"))]:
        try:
            data: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            continue
        except (OSError, ValueError) as exc:
            raise SecurityConfigError(f"{path}: unreadable credentials file ({exc})") from exc
        wanted = set((bootstrap or env.get("KAFKA_BOOTSTRAP_SERVERS") or data["bootstrap"]).split(","))
        if wanted <= set(data["bootstrap"].split(",")):
            return data
    return None


class KafkaSecurity(BaseSettings):
    """The KAFKA_* security variables, as read (``Settings.kafka``); ``ClientSecurity`` checks
    them and adds the embedded broker's credentials when none is set."""

    model_config = SettingsConfigDict(env_prefix="KAFKA_", frozen=True, extra="ignore")

    security_protocol: str | None = None
    sasl_mechanism: str | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    sasl_password_file: Path | None = None
    ssl_cafile: str | None = None

    @classmethod
    def of(cls, env: Mapping[str, str]) -> KafkaSecurity:
        """From a mapping of environment variables (not the process's own)."""
        return cls.model_validate({name: env[f"KAFKA_{name.upper()}"] for name in cls.model_fields
                                   if env.get(f"KAFKA_{name.upper()}")})


@dataclass(frozen=True)
class ClientSecurity:
    protocol: str = "PLAINTEXT"
    mechanism: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    cafile: str | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol.startswith("SASL_")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, bootstrap: str | None = None) -> ClientSecurity:
        """From the process's environment (or ``env``), through ``KafkaSecurity``."""
        config = KafkaSecurity() if env is None else KafkaSecurity.of(env)
        return cls.from_settings(config, bootstrap, env)

    @classmethod
    def from_settings(cls, config: KafkaSecurity, bootstrap: str | None = None,
                      env: Mapping[str, str] | None = None) -> ClientSecurity:
        if not config.security_protocol:
            found = embedded_credentials(bootstrap, env)
            if found is not None:
                return cls.from_credentials(found, config.sasl_username)
        protocol = (config.security_protocol or "PLAINTEXT").strip().upper()
        if protocol not in PROTOCOLS:
            raise SecurityConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol!r} is not one of {', '.join(PROTOCOLS)}")
        mechanism = username = None
        password: SecretStr | None = None
        if protocol.startswith("SASL_"):
            mechanism = (config.sasl_mechanism or "SCRAM-SHA-512").strip().upper()
            if mechanism not in MECHANISMS:
                raise SecurityConfigError(f"KAFKA_SASL_MECHANISM={mechanism!r} is not one of {', '.join(MECHANISMS)}")
            username = config.sasl_username
            if not username:
                raise SecurityConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_USERNAME")
            password = config.sasl_password if config.sasl_password and config.sasl_password.get_secret_value() else None
            if password is None and config.sasl_password_file:
                path = Path(config.sasl_password_file)
                try:
                    password = SecretStr(path.read_text(encoding="utf-8").strip()) or None
                except OSError as exc:
                    raise SecurityConfigError(f"KAFKA_SASL_PASSWORD_FILE={path}: {exc.strerror}") from exc
            if password is None or not password.get_secret_value():
                raise SecurityConfigError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs KAFKA_SASL_PASSWORD or "
                                          "KAFKA_SASL_PASSWORD_FILE")
        cafile = config.ssl_cafile or None
        if cafile and not Path(cafile).is_file():
            raise SecurityConfigError(f"KAFKA_SSL_CAFILE={cafile}: no such file")
        return cls(protocol, mechanism, username, password, cafile)

    @classmethod
    def from_credentials(cls, data: Mapping[str, Any], username: str | None = None) -> ClientSecurity:
        """From the embedded broker's credentials file, as ``username`` (default: its default user)."""
        user = username or str(data["default_user"])
        users: Mapping[str, str] = data["users"]
        if user not in users:
            raise SecurityConfigError(f"KAFKA_SASL_USERNAME={user!r} is not in the embedded broker's credentials "
                                      f"file (users: {', '.join(sorted(users))})")
        return cls(str(data["protocol"]), str(data["mechanism"]), user, SecretStr(users[user]), str(data["cafile"]))

    def _common(self) -> dict[str, Any]:
        """What kafka-python and aiokafka name alike: the protocol and the SASL login."""
        out: dict[str, Any] = {"security_protocol": self.protocol}
        if self.sasl:
            out.update(sasl_mechanism=self.mechanism, sasl_plain_username=self.username,
                       sasl_plain_password=self.password.get_secret_value() if self.password else None)
        return out

    def kafka_python(self) -> dict[str, Any]:
        """Keyword arguments of kafka-python's clients."""
        out = self._common()
        if self.tls:
            out["ssl_check_hostname"] = True
            if self.cafile:
                out["ssl_cafile"] = self.cafile
        return out

    def ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        return ssl.create_default_context(cafile=self.cafile)

    def aiokafka(self) -> dict[str, Any]:
        """Keyword arguments of aiokafka's clients."""
        out = self._common()
        if self.tls:
            out["ssl_context"] = self.ssl_context()
        return out

    def faust(self) -> Any:
        """Faust's ``broker_credentials`` (None for PLAINTEXT)."""
        from faust.auth import SASLCredentials, SSLCredentials

        if self.sasl:
            return SASLCredentials(username=self.username,
                                   password=self.password.get_secret_value() if self.password else None,
                                   ssl_context=self.ssl_context(),
                                   mechanism=self.mechanism)
        if self.tls:
            return SSLCredentials(self.ssl_context())
        return None


def kafka_python_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    """``bootstrap_servers`` and the security settings of the environment, for kafka-python."""
    return {"bootstrap_servers": bootstrap, **ClientSecurity.from_env(bootstrap=bootstrap).kafka_python(), **extra}


def aiokafka_config(bootstrap: str, **extra: Any) -> dict[str, Any]:
    return {"bootstrap_servers": bootstrap, **ClientSecurity.from_env(bootstrap=bootstrap).aiokafka(), **extra}


def faust_credentials(bootstrap: str | None = None) -> Any:
    return ClientSecurity.from_env(bootstrap=bootstrap).faust()
