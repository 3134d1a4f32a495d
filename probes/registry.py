"""The registry: `kind` to probe class. Adding a kind is one import and one tuple entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from probes.errors import ProbeConfigError
from probes.heartbeat import HeartbeatProbe
from probes.http import HttpProbe
from probes.mysql import MysqlProbe
from probes.probe import KindSettings, Probe, ProbeContext
from probes.redis import RedisProbe
from probes.ssh import SshProbe
from probes.tcp import TcpProbe
from probes.tls import TlsProbe

PROBE_CLASSES: dict[str, type[Probe]] = {
    cls.kind: cls
    for cls in (HttpProbe, TlsProbe, TcpProbe, MysqlProbe, RedisProbe, SshProbe, HeartbeatProbe)
}


def probe_class(kind: str) -> type[Probe]:
    try:
        return PROBE_CLASSES[kind]
    except KeyError:
        raise ProbeConfigError(
            f"unknown probe kind '{kind}'; use one of {', '.join(PROBE_CLASSES)}"
        ) from None


def kind_settings(kind: str, raw: Mapping[str, Any]) -> KindSettings:
    """Validate the kind-specific keys of one probe (raises pydantic's ValidationError)."""
    return probe_class(kind).settings_model.model_validate(dict(raw))


def build_probe(
    probe_id: str, kind: str, raw: Mapping[str, Any] | KindSettings, context: ProbeContext
) -> Probe:
    """A ready probe; settings that fail validation raise ProbeConfigError naming the key."""
    try:
        settings = raw if isinstance(raw, KindSettings) else kind_settings(kind, raw)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        raise ProbeConfigError(f"probe {probe_id}: {where}: {first['msg']}") from None
    return probe_class(kind)(probe_id, settings, context)
