"""Incidents as plain JSON-ready documents, for `--json` output and exports."""

from __future__ import annotations

from typing import Any

from incidents.model import Actor, Incident, Milestone, TimelineEvent


def actor_document(actor: Actor) -> dict[str, str]:
    return {"source": actor.source.value, "id": actor.id, "name": actor.name}


def incident_document(incident: Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "number": incident.number,
        "title": incident.title,
        "severity": incident.severity.value,
        "status": incident.status.value,
        "service": incident.service,
        "dedup_key": incident.dedup_key,
        "channel": incident.channel,
        "thread_ts": incident.thread_ts,
        "milestones": {
            milestone.value: (
                incident.milestones[milestone].isoformat()
                if milestone in incident.milestones
                else None
            )
            for milestone in Milestone
        },
        "closure_reason": incident.closure_reason.value if incident.closure_reason else None,
        "participants": [actor_document(actor) for actor in incident.participants],
    }


def event_document(event: TimelineEvent) -> dict[str, Any]:
    return {
        "at": event.at.isoformat(),
        "actor": actor_document(event.actor),
        "kind": event.kind,
        "field": event.field,
        "old": event.old,
        "new": event.new,
        "text": event.text,
    }
