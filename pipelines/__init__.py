"""opentact-cdr: Opentact CDR/MDR sync, models, reports and dashboards."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("opentact-cdr")
except PackageNotFoundError:  # running from a source tree without install
    __version__ = "0.0.0"
