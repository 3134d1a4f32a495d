"""From tocsin.yml to running parts: probe objects, detection rules, calendar, settings.

This is where configuration meets the environment (secrets named by `*_env`
are read here and nowhere else) and the only place that knows both the YAML
shape and the domain types.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from bot.config.model import TocsinConfig
from bot.config.probe_settings import ProbeSettings
from bot.held_secrets import secret_redaction
from incidents.clock import Clock, SystemClock
from incidents.detection_rules import DetectionSettings, ProbeRule, SeverityStep
from probes.http_proxy import FROM_ENVIRONMENT, PROXY_VARIABLES
from probes.probe import HeartbeatLedger, Probe, ProbeContext, SshHost
from probes.registry import build_probe


@dataclass(frozen=True)
class PlannedProbe:
    settings: ProbeSettings
    probe: Probe
    rule: ProbeRule

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def timeout(self) -> float:
        return self.settings.effective_timeout.total_seconds()

    @property
    def interval(self) -> float:
        return self.settings.interval.total_seconds()


def referenced_variables(config: TocsinConfig) -> set[str]:
    """The environment variables probes name (`password_env`, `Authorization_env` headers),
    and the proxy variables when a probe takes its proxy from the environment."""
    names: set[str] = set()
    for probe in config.probes:
        for key, value in (probe.model_extra or {}).items():
            if key.endswith("_env") and isinstance(value, str):
                names.add(value)
            if key == "proxy" and value == FROM_ENVIRONMENT:
                names.update(PROXY_VARIABLES)
            if key == "headers" and isinstance(value, dict):
                names.update(str(v) for k, v in value.items() if str(k).lower().endswith("_env"))
    return names


def probe_context(
    config: TocsinConfig,
    heartbeats: HeartbeatLedger | None = None,
    environ: Mapping[str, str] | None = None,
    clock: Clock | None = None,
) -> ProbeContext:
    """What probes may use. Of the environment they see only the variables they name;
    what they say is redacted of every secret tocsin holds (Slack's included)."""
    env = os.environ if environ is None else environ
    named = {name: env[name] for name in referenced_variables(config) if name in env}
    hosts = {
        name: SshHost(
            name=name,
            address=host.address,
            port=host.port,
            user=host.user,
            key=host.key,
            known_hosts=host.known_hosts,
            key_passphrase=env.get(host.key_passphrase_env) if host.key_passphrase_env else None,
        )
        for name, host in config.hosts.items()
    }
    return ProbeContext(
        environ=named,
        hosts=hosts,
        heartbeats=heartbeats,
        now=(clock or SystemClock()).now,
        redaction=secret_redaction(config, env),
    )


def probe_rule(settings: ProbeSettings, group_by: str) -> ProbeRule:
    group_value = settings.labels.get(group_by, "")
    return ProbeRule(
        probe_id=settings.id,
        severity=settings.severity,
        interval=settings.interval,
        timeout=settings.effective_timeout,
        fail_after=settings.fail_after,
        fail_window=settings.window,
        recover_after=settings.recover_after,
        depends_on=tuple(settings.depends_on),
        group=f"{group_by}={group_value}" if group_value else "",
        service=settings.service,
        ladder=tuple(
            SeverityStep(step.measure, step.severity, step.above, step.below)
            for step in settings.severity_ladder
        ),
    )


def detection_settings(config: TocsinConfig) -> DetectionSettings:
    return DetectionSettings(
        group_wait=config.detection.group_wait,
        flap_high=config.detection.flapping.high,
        flap_low=config.detection.flapping.low,
    )


def plan_probes(
    config: TocsinConfig, context: ProbeContext, only: list[str] | None = None
) -> list[PlannedProbe]:
    """Every configured probe (or those in `only`), built and ready to run."""
    chosen = [p for p in config.probes if only is None or p.id in only]
    return [
        PlannedProbe(
            settings=settings,
            probe=build_probe(settings.id, settings.kind, settings.kind_settings(), context),
            rule=probe_rule(settings, config.detection.group_by),
        )
        for settings in chosen
    ]
