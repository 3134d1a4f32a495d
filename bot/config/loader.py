"""Load tocsin.yml: syntax, secrets, schema and cross-references, all problems at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from bot.config.model import TocsinConfig
from bot.config.probe_settings import kind_problems
from bot.config.problems import ConfigError, ConfigProblem, problems_from_validation
from bot.config.references import approval_warnings, reference_problems
from bot.config.secrets import secret_problems, unset_variables
from bot.config.source import Source, parse_source, read_source


@dataclass(frozen=True)
class LoadedConfig:
    config: TocsinConfig
    path: Path
    warnings: list[str] = field(default_factory=list)


def load_config(path: Path) -> LoadedConfig:
    """The validated configuration, or a ConfigError listing every problem."""
    return _validate(read_source(path))


def load_config_text(text: str, path: Path = Path("tocsin.yml")) -> LoadedConfig:
    return _validate(parse_source(text, path))


def _validate(source: Source) -> LoadedConfig:
    if source.data is None:
        raise ConfigError(
            [ConfigProblem((), f"{source.path}: the file is empty; start from examples/demo.yml")]
        )
    if not isinstance(source.data, dict):
        raise ConfigError(
            [ConfigProblem((), f"{source.path}: the top level must be a mapping of keys")]
        )
    secrets = secret_problems(source.data)
    secret_paths = {problem.path for problem in secrets}
    problems = source.problems + secrets
    # A secret written where a kind does not expect a key is reported once, as a secret.
    problems += [p for p in kind_problems(source.data) if p.path not in secret_paths]
    problems += reference_problems(source.data)
    try:
        config = TocsinConfig.model_validate(source.data)
    except ValidationError as error:
        # A secret under an `*_env` key fails the schema too; say it once, as a secret.
        problems += [
            problem
            for problem in problems_from_validation(error, _field_names())
            if problem.path not in secret_paths
        ]
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems, source)
    warnings = unset_variables(source.data) + approval_warnings(config)
    return LoadedConfig(config=config, path=source.path, warnings=warnings)


def _field_names() -> set[str]:
    """Every key the schema knows, for 'did you mean' hints."""
    schema = TocsinConfig.model_json_schema()
    names = set(schema["properties"])
    for definition in schema.get("$defs", {}).values():
        names.update(definition.get("properties", {}))
    return names
