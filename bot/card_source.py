"""What the outbox sends, rendered from the stores at sending time.

The outbox holds references, so a card update queued an hour ago shows the
incident as it is now, and a burst of changes becomes one edit.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from slack_sdk.models.blocks import Block

from bot.cards import CardView, NextStep, ProbeEvidence, Remediation, card_blocks, card_text
from bot.config.model import TocsinConfig
from bot.mrkdwn import escape_capped
from bot.thread_replies import dm_text, reply_text
from incidents.clock import Clock
from incidents.escalation import Escalation
from incidents.model import Actor, Incident, Severity, Status, TimelineEvent
from incidents.probe_journal import ProbeJournal
from incidents.service import IncidentService

Mention = Callable[[str], str]
NOTICE_LIMIT = 3000


@dataclass(frozen=True)
class RenderedCard:
    text: str
    blocks: list[Block]


class CardSource:
    """Builds incident cards, thread replies and DMs from the incident and probe stores."""

    def __init__(
        self,
        config: TocsinConfig,
        incidents: IncidentService,
        journal: ProbeJournal,
        escalation: Escalation,
        clock: Clock,
        mention: Mention,
    ) -> None:
        self._config = config
        self._incidents = incidents
        self._journal = journal
        self._escalation = escalation
        self._clock = clock
        self._mention = mention
        self._remediations = _remediations_by_probe(config)
        self._probe_channels = {p.id: p.channel for p in config.probes if p.channel}

    @property
    def zone(self) -> ZoneInfo:
        return self._config.zone

    @property
    def severity_names(self) -> Mapping[Severity, str]:
        return {severity: s.name for severity, s in self._config.severities.items()}

    async def event(self, timeline_id: int) -> TimelineEvent:
        return await self._incidents.event(timeline_id)

    async def channel_for(self, number: int) -> str:
        """Where a new card goes: the service's channel, the probe's, or the default."""
        incident = await self._incidents.get(str(number))
        if incident.channel:
            return incident.channel
        routed = self._config.slack.service_channels.get(incident.service)
        if routed:
            return routed
        for probe_id, _, _ in await self._journal.incident_probes(incident.number):
            if probe_id in self._probe_channels:
                return self._probe_channels[probe_id]
        probe = _probe_of(incident)
        if probe in self._probe_channels:
            return self._probe_channels[probe]
        return self._config.slack.channel

    async def card(self, number: int) -> RenderedCard:
        view = await self.view(number)
        return RenderedCard(card_text(view), card_blocks(view))

    async def view(self, number: int) -> CardView:
        incident = await self._incidents.get(str(number))
        timeline = await self._incidents.timeline(incident.id)
        members = await self._journal.incident_probes(number)
        evidence = []
        for probe_id, role, recovered in members:
            history = await self._journal.history(probe_id, limit=1)
            latest = history.samples[-1] if history.samples else None
            evidence.append(ProbeEvidence(probe_id, role, recovered, latest))
        step = await self._escalation.next_step(number) if incident.status.is_active else None
        return CardView(
            incident=incident,
            severity_names=self.severity_names,
            zone=self.zone,
            now=self._clock.now(),
            evidence=evidence,
            next_step=None
            if step is None
            else NextStep(
                step.due_at,
                tuple(self._mention(t) for t in step.targets),
                step.level,
                step.is_reminder,
            ),
            acknowledged_by=_last_actor(timeline, "acknowledged"),
            resolved_by=_last_actor(timeline, "resolved")
            if incident.status in (Status.RESOLVED, Status.CLOSED)
            else None,
            resolution=_last_text(timeline, "resolved"),
            remediations=self._remediations_for(m[0] for m in members),
        )

    def reply(self, event: TimelineEvent) -> str | None:
        return reply_text(event, self.zone, self._mention)

    def notice(self, text: str, targets: str) -> str:
        """A notice about tocsin itself, led by the mentions of `targets` (space-separated)."""
        mentions = " ".join(self._mention(target) for target in targets.split())
        return f"{mentions} {escape_capped(text, NOTICE_LIMIT)}".strip()

    async def dm(self, number: int, step_text: str, permalink: str | None) -> str:
        incident = await self._incidents.get(str(number))
        return dm_text(incident, step_text, permalink)

    def _remediations_for(self, probe_ids: Iterable[str]) -> list[Remediation]:
        seen: dict[str, Remediation] = {}
        for probe_id in probe_ids:
            for remediation in self._remediations.get(probe_id, ()):
                seen.setdefault(remediation.command_id, remediation)
        return list(seen.values())


def _remediations_by_probe(config: TocsinConfig) -> dict[str, list[Remediation]]:
    found: dict[str, list[Remediation]] = {}
    for probe in config.probes:
        for command_id in probe.remediate:
            command = config.commands.get(command_id)
            description = command.description if command is not None else ""
            found.setdefault(probe.id, []).append(Remediation(command_id, description or ""))
    return found


def _probe_of(incident: Incident) -> str:
    key = incident.dedup_key or ""
    return key.split("probe=", 1)[1] if "probe=" in key else ""


def _last_actor(timeline: list[TimelineEvent], kind: str) -> Actor | None:
    found = [event.actor for event in timeline if event.kind == kind]
    return found[-1] if found else None


def _last_text(timeline: list[TimelineEvent], kind: str) -> str:
    found = [event.text for event in timeline if event.kind == kind]
    return found[-1] if found else ""
