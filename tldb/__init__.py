"""tldb: torch.compile TORCH_TRACE logs into SQLite, a tlparse-compatible report, and Datasette."""

# The single source of the version (pyproject.toml reads it from here; reading it back from
# package metadata at import time would cost a fifth of a second of startup).
__version__ = "0.1.0"

__all__ = ["__version__"]
