"""The config repository (git, via pygit2)."""

from .repo import CONFIG_FILE, ConfigRepo, Conflict, LogEntry, RepoError, short

__all__ = ["CONFIG_FILE", "ConfigRepo", "Conflict", "LogEntry", "RepoError", "short"]
