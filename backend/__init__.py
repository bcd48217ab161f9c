"""talgate: the router core (backend). No textual imports here."""

__version__ = "0.1.0"
