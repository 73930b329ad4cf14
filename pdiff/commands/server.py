"""`pdiff server start|status|stop`: the resident server that makes one-shot calls instant (pdiff/server.py)."""

from __future__ import annotations

import time

import typer

from pdiff.cli import app, error_line

server_app = typer.Typer(
    help="The resident server: later pdiff calls are answered by it without importing torch and SymPy again.",
    no_args_is_help=True, rich_markup_mode=None)
app.add_typer(server_app, name="server")


def _describe(info: dict) -> str:
    return (f"running: pid {info['pid']}, socket {info['socket']}, up {info['uptime']:.0f} s, "
            f"{info['served']} requests served, {info['running']} running, idle timeout {info['idle_timeout']:g} s")


@server_app.command()
def start(
    wait: float = typer.Option(60.0, "--wait", help="Seconds to wait for the server to listen.", min=1.0),
) -> None:
    """Start the server in the background (if none is running) and wait until it listens.

    It exits after PDIFF_SERVER_IDLE seconds (default 900) without a request, and restarts itself when the
    installed pdiff changes. PDIFF_SERVER=0 stops calls from using it.
    """
    from pdiff import client

    try:
        client.private_dir(create=True)
        path = client.socket_path()
        sock = client.connect(path)
        if sock is None:
            sock = client.start_server(path, wait)
        sock.close()
        info = client.query("status", path)
    except client.ServerUnusable as exc:
        error_line(f"error: {exc}")
        raise typer.Exit(1) from None
    if info is None:
        error_line("error: the server started but does not answer")
        raise typer.Exit(1)
    typer.echo(_describe(info))


@server_app.command()
def status() -> None:
    """Say whether the server is running (exit status 0) or not (exit status 1)."""
    from pdiff import client

    try:
        info = client.query("status")
    except client.ServerUnusable as exc:
        error_line(f"error: {exc}")
        raise typer.Exit(1) from None
    if info is None:
        typer.echo(f"not running (socket {client.socket_path()})")
        raise typer.Exit(1)
    if info.get("fingerprint") != client.fingerprint():
        typer.echo(_describe(info) + "; pdiff has changed since it started: the next call restarts it")
    else:
        typer.echo(_describe(info))


@server_app.command()
def stop() -> None:
    """Stop the server: it stops listening at once; requests it is running finish first."""
    from pdiff import client

    try:
        info = client.query("stop")
    except client.ServerUnusable as exc:
        error_line(f"error: {exc}")
        raise typer.Exit(1) from None
    if info is None:
        typer.echo("not running")
        return
    deadline = time.monotonic() + 5
    while client.connect(client.socket_path()) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    typer.echo(f"stopped (pid {info['pid']})")
