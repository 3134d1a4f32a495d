"""The JSON Schema of tocsin.yml for editors, kind-specific probe keys included.

Each probe kind validates its own keys (`url`, `query`, ...) in its settings
model; the schema adds one `if kind is X then these keys` rule per kind, so an
editor completes and checks them as the loader does.
"""

from __future__ import annotations

from typing import Any

from bot.config.model import TocsinConfig
from probes.registry import PROBE_CLASSES

REF = "#/$defs/{model}"


def config_schema() -> dict[str, Any]:
    schema = TocsinConfig.model_json_schema(ref_template=REF)
    definitions: dict[str, Any] = schema.setdefault("$defs", {})
    rules = []
    for kind, probe_class in PROBE_CLASSES.items():
        own = probe_class.settings_model.model_json_schema(ref_template=REF)
        definitions.update(own.pop("$defs", {}))
        rules.append(
            {
                "if": {"properties": {"kind": {"const": kind}}, "required": ["kind"]},
                "then": {
                    "properties": own.get("properties", {}),
                    "required": own.get("required", []),
                },
            }
        )
    probe = definitions["ProbeSettings"]
    probe.pop("additionalProperties", None)
    probe["allOf"] = rules
    probe["unevaluatedProperties"] = False
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tocsin.yml"
    return schema
