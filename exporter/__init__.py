"""mlops-exporter: a Prometheus exporter sidecar that follows a model server's prediction
logs and serves data drift, latency and traffic as metrics."""

from mlops_core import __version__

DEFAULT_PORT = 9874
DEFAULT_CONFIG_PATH = "/etc/mlops-exporter/config.yml"

__all__ = ["DEFAULT_CONFIG_PATH", "DEFAULT_PORT", "__version__"]
