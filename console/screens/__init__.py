"""The console's screens, one module each; reachable by ``:name`` and a number key."""
