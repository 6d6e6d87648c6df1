"""Entry point of ``recplan``: builds the Typer app from the per-noun modules and maps errors to exits.

Exit codes: 0 success; 1 infeasible plan or unmet requirement; 2 bad input (usage, file, schema).
Every error is one line on stderr, never a traceback. Heavy imports (numpy fits, simpy, torch) happen
inside the commands that need them, so ``recplan --help`` stays instant.
"""

from __future__ import annotations

import sys

import typer

from planner import __version__
from planner.cli import bench, calibrate, profiles, scaling, simulate, whatif, workloads
from planner.cli.common import one_line_error
from planner.errors import RecplanError

try:  # newer typer vendors its own click
    from typer._click import exceptions as _click_exc
except ImportError:  # pragma: no cover - older typer uses the click package
    from click import exceptions as _click_exc  # type: ignore[no-redef]

_EXIT = tuple({typer.Exit, getattr(_click_exc, "Exit", typer.Exit)})
_ABORT = tuple({typer.Abort, getattr(_click_exc, "Abort", typer.Abort)})
_NO_ARGS_HELP = getattr(_click_exc, "NoArgsIsHelpError", None)

app = typer.Typer(
    name="recplan",
    help="Capacity planner for training DLRM-style recommendation models: measure, fit, plan.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"recplan {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """recplan: measure DLRM kernels, fit cost models and scaling laws, plan capacity."""


app.add_typer(profiles.app, name="profiles", help="Hardware profiles: list, show, validate, derive.")
app.add_typer(workloads.app, name="workloads", help="DLRM workloads: list, show, validate.")
app.add_typer(bench.app, name="bench", help="Measure DLRM kernels on this device (needs torch).")
app.add_typer(scaling.app, name="scaling", help="Scaling laws: fit observations, presets, run a study.")
calibrate.register(app)
simulate.register(app)
whatif.register(app)


def run(argv: list[str] | None = None) -> int:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    code = 0
    try:
        result = app(args=args, prog_name="recplan", standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except RecplanError as exc:
        one_line_error(str(exc))
        code = exc.exit_code
    except _EXIT as exc:  # --version, typer.Exit
        code = int(getattr(exc, "exit_code", 0) or 0)
    except _ABORT:
        one_line_error("interrupted")
        code = 130
    except _click_exc.UsageError as exc:
        if _NO_ARGS_HELP is not None and isinstance(exc, _NO_ARGS_HELP):
            code = 0  # a bare group prints its help
        else:
            where = f"{exc.ctx.command_path}: " if exc.ctx is not None else ""
            one_line_error(f"{where}{exc.format_message()}")
            code = 2
    except _click_exc.ClickException as exc:
        one_line_error(exc.format_message())
        code = exc.exit_code if exc.exit_code else 2
    except KeyboardInterrupt:
        one_line_error("interrupted")
        code = 130
    except BrokenPipeError:
        code = 0
    if argv is None:
        sys.exit(code)
    return code


if __name__ == "__main__":
    run()
