"""``mlops-exporter``: the command line, in the Prometheus exporters' flag style.

Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 1 for a configuration error (one
line on stderr: ``mlops-exporter: error: <key or file>: <what is wrong>``, also when the
process runs out of memory while starting), 2 for a usage error (argparse's own message, or
one line for flags that cannot go together).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from exporter import (
    DEFAULT_CONFIG_PATH,
    DEFAULT_HEADER_TIMEOUT,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_PORT,
    DEFAULT_TELEMETRY_PATH,
    __version__,
)
from exporter.limits import raise_open_files_limit
from exporter.logs import FORMATS, LEVELS
from mlops_core.errors import ConfigError, MlopsError

if TYPE_CHECKING:
    from exporter.server import ServerOptions

PROG = "mlops-exporter"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description=(
            "Prometheus exporter sidecar for ML models: follows prediction logs and serves "
            "data drift, latency and traffic metrics."
        ),
        epilog=(
            "Every config key can also be set from the environment: drift.interval -> "
            "MLOPS_EXPORTER_DRIFT_INTERVAL. Try it without any setup: mlops-exporter --demo"
        ),
    )
    parser.add_argument(
        "--config.file",
        dest="config_file",
        metavar="FILE",
        default=None,
        help=f"exporter configuration file (YAML; default {DEFAULT_CONFIG_PATH})",
    )
    parser.add_argument(
        "--web.listen-address",
        dest="listen_address",
        metavar="HOST:PORT",
        default=f":{DEFAULT_PORT}",
        help=f"address to serve /metrics on (default :{DEFAULT_PORT})",
    )
    parser.add_argument(
        "--web.config.file",
        dest="web_config_file",
        metavar="FILE",
        default=None,
        help="exporter-toolkit web configuration for TLS and basic auth",
    )
    parser.add_argument(
        "--web.telemetry-path",
        dest="telemetry_path",
        metavar="PATH",
        default=DEFAULT_TELEMETRY_PATH,
        help=f"path under which to expose metrics (default {DEFAULT_TELEMETRY_PATH})",
    )
    parser.add_argument(
        "--web.max-requests",
        dest="max_requests",
        metavar="N",
        type=int,
        default=DEFAULT_MAX_REQUESTS,
        help="maximum number of parallel scrape requests; over it, 503 at once; 0 disables "
        f"the limit (default {DEFAULT_MAX_REQUESTS})",
    )
    parser.add_argument(
        "--web.enable-lifecycle",
        dest="enable_lifecycle",
        action="store_true",
        help="enable POST /-/reload, which reloads the config and the references as SIGHUP "
        "does (as in Prometheus; without it the endpoint answers 403)",
    )
    parser.add_argument(
        "--web.disable-exporter-metrics",
        dest="disable_exporter_metrics",
        action="store_true",
        help="exclude the exporter's own process_* and python_* metrics",
    )
    # Hidden: the end-to-end tests and bench/bench_load.py cut slow clients in a second.
    parser.add_argument(
        "--web.header-timeout",
        dest="header_timeout",
        metavar="DURATION",
        default=None,
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--log.level", dest="log_level", choices=LEVELS, default="info", help="default: info"
    )
    parser.add_argument(
        "--log.format", dest="log_format", choices=FORMATS, default="json", help="default: json"
    )
    parser.add_argument(
        "--demo",
        action="store_true",
        help="run with a bundled reference and a synthetic model server writing logs to a "
        "temporary directory (drift appears after ~30 s)",
    )
    # Hidden knobs for the demo's end-to-end test (drift within seconds instead of ~30 s).
    parser.add_argument(
        "--demo.drift-after",
        dest="demo_drift_after",
        type=float,
        default=None,
        help=argparse.SUPPRESS,
    )
    parser.add_argument(
        "--demo.interval", dest="demo_interval", default=None, help=argparse.SUPPRESS
    )
    parser.add_argument("--version", action="version", version=f"{PROG}, version {__version__}")
    return parser


def _fail(message: str) -> int:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 1


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt  # SIGTERM while starting up: exit 0 like SIGINT, no traceback


def server_options(args: argparse.Namespace) -> ServerOptions:
    """The ``--web.*`` serving flags, checked (a bad value is a one-line config error)."""
    # Here, not at the top: --version and usage errors need neither bcrypt nor asyncio.
    from exporter.server import ServerOptions

    header_timeout = DEFAULT_HEADER_TIMEOUT
    if args.header_timeout is not None:
        from mlops_core.durations import parse_duration

        try:
            header_timeout = parse_duration(args.header_timeout)
        except ValueError as exc:
            raise ConfigError(f"--web.header-timeout {args.header_timeout!r}: {exc}") from None
    return ServerOptions(
        telemetry_path=args.telemetry_path,
        max_requests=args.max_requests,
        header_timeout=header_timeout,
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.demo and args.config_file is not None:
        # the demo writes and runs its own config: the file given was silently ignored
        print(
            f"{PROG}: error: --config.file cannot be used with --demo (the demo runs its own"
            " config; drop one of them)",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, _interrupt)  # the running exporter installs its own

    from exporter.logs import configure_logging

    configure_logging(args.log_level, args.log_format)
    # As Go's runtime does for every Go exporter: the soft limit of 1,024 only protects
    # select(), and a sidecar following many log files needs more.
    raise_open_files_limit()
    try:
        web = server_options(args)
        exporter_metrics = not args.disable_exporter_metrics
        if args.demo:
            from exporter.demo import run_demo

            return run_demo(
                args.listen_address,
                args.web_config_file,
                version=__version__,
                drift_after=args.demo_drift_after,
                interval=args.demo_interval,
                web=web,
                exporter_metrics=exporter_metrics,
            )
        if args.config_file is None and not os.path.exists(DEFAULT_CONFIG_PATH):
            return _fail(
                f"{DEFAULT_CONFIG_PATH}: config file not found; pass --config.file=FILE, "
                f"or try {PROG} --demo"
            )
        return run(
            args.config_file or DEFAULT_CONFIG_PATH,
            args.listen_address,
            args.web_config_file,
            web=web,
            exporter_metrics=exporter_metrics,
            enable_lifecycle=args.enable_lifecycle,
        )
    except MlopsError as exc:
        return _fail(str(exc))
    except KeyboardInterrupt:
        return 0


def run(
    config_file: str,
    listen_address: str,
    web_config_file: str | None,
    *,
    web: ServerOptions | None = None,
    exporter_metrics: bool = True,
    enable_lifecycle: bool = False,
) -> int:
    """Serve with the configuration in ``config_file`` and the environment until a signal
    (SIGHUP reloads it)."""
    try:
        # Here, not at the top: --version and usage errors need neither the scheduler nor
        # scipy.  Inside the try: numpy's import allocates its BLAS threads' buffers, and on
        # a small container that MemoryError is a start that ran out of memory too.
        from exporter.app import build_exporter

        exporter = build_exporter(
            config_file,
            listen_address,
            web_config_file,
            os.environ,
            web=web,
            exporter_metrics=exporter_metrics,
            enable_lifecycle=enable_lifecycle,
        )
    except MemoryError:
        # The last line of defence: the bounds keep each size sane, but not their product
        # with the features and models on a small container.  The windows that failed are
        # freed by now, so there is memory enough to say which sizes to lower.
        raise ConfigError(_out_of_memory(config_file)) from None
    return exporter.run()


def _out_of_memory(config_file: str) -> str:
    """The one line for a start that ran out of memory, naming the sizes that set it."""
    from exporter.config import load_config

    text = "out of memory while starting"
    try:
        config = load_config(config_file, os.environ)
    except (MlopsError, MemoryError):  # read once already; say what can be said
        return f"{text}; lower the window sizes or give the process more memory"
    sizes = [f"drift.window.max_samples={config.drift.window.max_samples}"]
    if config.outcomes is not None:
        sizes.append(f"quality.window.max_samples={config.quality.window.max_samples}")
    models = len(config.model_list())
    return (
        f"{text} ({', '.join(sizes)}, {models} model{'s' if models != 1 else ''}; the drift"
        " window takes 8 bytes per sample per feature); lower them or give the process more"
        " memory"
    )


if __name__ == "__main__":
    sys.exit(main())
