"""tocsin.yml: schema, loading and validation."""

from bot.config.loader import LoadedConfig, load_config, load_config_text
from bot.config.model import TocsinConfig
from bot.config.problems import ConfigError

__all__ = ["ConfigError", "LoadedConfig", "TocsinConfig", "load_config", "load_config_text"]
