"""tldb: torch.compile TORCH_TRACE logs into SQLite, a tlparse-compatible report, and Datasette."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("tldb")
except PackageNotFoundError:  # running from a checkout that was never installed
    __version__ = "0.0.0"

__all__ = ["__version__"]
