"""The config model: RouterConfig, its loader and semantic checks."""

from .config import RouterConfig
from .load import ConfigError, Problem, dump_config, json_schema, load_config, validate_text

__all__ = ["RouterConfig", "ConfigError", "Problem", "load_config", "validate_text", "dump_config", "json_schema"]
