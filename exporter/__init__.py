"""mlops-exporter: a Prometheus exporter sidecar that follows a model server's prediction
logs and serves data drift, latency and traffic as metrics."""

from mlops_core import __version__

DEFAULT_PORT = 9874
DEFAULT_CONFIG_PATH = "/etc/mlops-exporter/config.yml"
#: node_exporter's defaults for --web.telemetry-path and --web.max-requests.
DEFAULT_TELEMETRY_PATH = "/metrics"
DEFAULT_MAX_REQUESTS = 40
#: Seconds a client has to send a whole request (and finish a TLS handshake) once it starts.
DEFAULT_HEADER_TIMEOUT = 10.0

__all__ = [
    "DEFAULT_CONFIG_PATH",
    "DEFAULT_HEADER_TIMEOUT",
    "DEFAULT_MAX_REQUESTS",
    "DEFAULT_PORT",
    "DEFAULT_TELEMETRY_PATH",
    "__version__",
]
