"""The Typer app: options → library calls → renderers. The one place that maps exceptions to exit codes.

Heavy modules (torch, sympy, the engine) are imported inside commands, so `pdiff --help` stays instant.
"""

from __future__ import annotations

import os
import signal
import sys
import traceback
from contextlib import contextmanager
from typing import Iterator, Optional

import typer

from pdiff import __version__
from pdiff.errors import ExitCode, ParseError, PdiffError

app = typer.Typer(
    name="pdiff",
    help="Partial derivatives of typed expressions at points, by autograd beside the exact symbolic answer.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # plain Click help and one-line usage errors (no boxed panels); faster --help
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"pdiff {__version__}")
        raise typer.Exit()


def _completion_shell() -> str:
    from pdiff import completion

    try:
        return completion.detect_shell()
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _show_completion(value: bool) -> None:
    if value:
        from pdiff import completion

        typer.echo(completion.SCRIPTS[_completion_shell()], nl=False)
        raise typer.Exit()


def _install_completion(value: bool) -> None:
    if value:
        from pdiff import completion

        shell = _completion_shell()
        try:
            changed = completion.install(shell)
        except OSError as exc:
            error_line(f"error: cannot install the completion script: {exc.strerror or exc}: {exc.filename}")
            raise typer.Exit(1) from None
        typer.echo(f"{shell} completion installed in {changed[0]}"
                   + (f" (loaded from {changed[1]})" if len(changed) > 1 else ""))
        typer.echo("It takes effect in a new terminal.")
        raise typer.Exit()


@app.callback()
def main(
    version: Optional[bool] = typer.Option(None, "--version", callback=_version, is_eager=True,
                                           help="Show the version and exit."),
    install_completion: bool = typer.Option(
        False, "--install-completion", callback=_install_completion, is_eager=True, expose_value=False,
        help="Install Tab completion for your shell (bash, zsh or fish, from $SHELL)."),
    show_completion: bool = typer.Option(
        False, "--show-completion", callback=_show_completion, is_eager=True, expose_value=False,
        help="Print the Tab-completion script for your shell (bash, zsh or fish, from $SHELL)."),
) -> None:
    """Partial derivatives of typed expressions at points, by autograd beside the exact symbolic answer.

    Exit status: 0 every answer is finite and agrees with the exact value; 1 some answer is non-finite,
    disagrees or timed out; 2 bad input or usage.
    """


def error_line(message: str) -> None:
    """One message on stderr, prefixed with the program name."""
    typer.echo(f"pdiff: {message}", err=True)


@contextmanager
def reported_errors(debug: bool) -> Iterator[None]:
    """Turn pdiff's exceptions into one line on stderr and the matching exit status (a traceback with --debug)."""
    try:
        yield
    except PdiffError as exc:
        if debug:
            traceback.print_exc()
        error_line(f"error: {exc}")
        if isinstance(exc, ParseError) and exc.caret():
            typer.echo(exc.caret(), err=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        error_line("interrupted")
        raise typer.Exit(130) from None
    except UnicodeDecodeError as exc:  # a points file or stdin that is not text: the user's input, not a bug
        error_line(f"error: the input is not valid UTF-8 text ({exc.reason} at byte {exc.start})")
        raise typer.Exit(ExitCode.USAGE) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except Exception as exc:  # a bug in pdiff: still one line, never a traceback without --debug
        if debug:
            traceback.print_exc()
        error_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        raise typer.Exit(ExitCode.MATH) from None


# each module registers its commands on `app` when imported; add a new command module here
COMMAND_MODULES = ["diff", "calculus", "shell", "check", "plot", "critical", "server", "steps", "taylor"]


def _register_commands() -> None:
    import importlib

    for name in COMMAND_MODULES:
        importlib.import_module(f"pdiff.commands.{name}")


_register_commands()


def usage_error(exc: Exception, in_shell: bool = False) -> str:
    """A Click usage error (bad option, missing argument, bad value) as one message, pointing at --help (in
    `pdiff shell`, lines are typed without the `pdiff`)."""
    message = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    context = getattr(exc, "ctx", None)
    if context is None:
        return f"error: {message}"
    if in_shell:
        return f"error: {message} (try '{context.command_path.removeprefix('pdiff ')} --help')"
    return f"error: {message} (see '{context.command_path} --help')"


_EXPRESSION_CHARACTERS = set("0123456789.([ ^*/+")


def expressions_not_options(args: list[str]) -> list[str]:
    """`pdiff diff "-x^2"`: an argument that starts with '-' but cannot be an option (it holds a digit, a bracket, an
    operator or a space right after the dash, or anywhere) is an expression; a leading space keeps Click from
    reading it as an option, and the parser ignores the space."""
    return [f" {arg}" if arg.startswith("-") and len(arg) > 1 and not arg.startswith("--")
            and (arg[1] in _EXPRESSION_CHARACTERS or any(c in "^*/+()[] " for c in arg)) else arg
            for arg in args]


def run() -> None:
    """Console-script entry point."""
    # a closed pipe (`pdiff ... | head -1`) ends the process quietly, as for other Unix tools
    if hasattr(signal, "SIGPIPE"):
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    from pdiff import completion
    from pdiff.bounds import limit_process_memory

    if os.environ.get(completion.SHELL_VARIABLE):  # a Tab press, from the script --install-completion wrote
        sys.exit(completion.answer(app))

    limit_process_memory()
    try:
        code = app(args=expressions_not_options(sys.argv[1:]), prog_name="pdiff", standalone_mode=False)
    except typer.TyperException as exc:  # a usage error (unknown option, missing argument): one line, exit 2
        context = getattr(exc, "ctx", None)
        if type(exc).__name__ == "NoArgsIsHelpError":  # bare `pdiff` or `pdiff diff`: the help, as Click does
            typer.echo(context.get_help() if context else exc.format_message(), err=True)
        else:
            error_line(usage_error(exc))
        sys.exit(getattr(exc, "exit_code", ExitCode.USAGE))
    except typer.Abort:
        error_line("aborted")
        sys.exit(130)
    except Exception as exc:  # anything that escaped a command (a rendering bug): one line, no traceback
        if "--debug" in sys.argv:
            raise
        error_line(f"internal error: {type(exc).__name__}: {exc} (run with --debug for a traceback)")
        sys.exit(ExitCode.MATH)
    sys.exit(code or 0)
