"""ragbus core: settings, clients, observability and the embedded-stack launcher shared by every process."""

__version__ = "0.1.0"
