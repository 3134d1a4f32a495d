"""Load tocsin.yml: syntax, secrets, schema and cross-references, all problems at once."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from pydantic import BaseModel, ValidationError

from bot.config import command_settings, fields, model, probe_settings
from bot.config.model import TocsinConfig
from bot.config.probe_settings import probe_key_problems
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
    problems = source.problems + secret_problems(source.data)
    problems += probe_key_problems(source.data)
    problems += reference_problems(source.data)
    try:
        config = TocsinConfig.model_validate(source.data)
    except ValidationError as error:
        reported = {problem.path for problem in problems}
        problems += [
            problem
            for problem in problems_from_validation(error, _field_names())
            if problem.path not in reported or not problem.path
        ]
        raise ConfigError(problems, source) from None
    if problems:
        raise ConfigError(problems, source)
    warnings = unset_variables(source.data) + approval_warnings(config)
    return LoadedConfig(config=config, path=source.path, warnings=warnings)


def _field_names() -> set[str]:
    """Every key the schema knows, for 'did you mean' hints."""
    names: set[str] = set()
    for module in (model, fields, probe_settings, command_settings):
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, BaseModel):
                names.update(value.model_fields)
    return names
