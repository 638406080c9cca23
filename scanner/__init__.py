"""keysweep: find leaked AWS credentials in git repositories and working trees."""

__version__ = "0.1.0"
