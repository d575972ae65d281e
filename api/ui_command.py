"""``commitplan ui``: run the Streamlit UI (``ui/app.py``) in a child process on the configured database."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

APP = Path(__file__).resolve().parent.parent / "ui" / "app.py"


def streamlit_command(port: int, host: str, headless: bool) -> list[str]:
    """The ``streamlit run`` command line: no usage statistics sent, no file watching when headless."""
    command = [sys.executable, "-m", "streamlit", "run", str(APP), "--server.port", str(port),
               "--server.address", host, "--server.headless", str(headless).lower(),
               "--browser.gatherUsageStats", "false", "--theme.base", "light", "--client.toolbarMode", "minimal"]
    if headless:
        command += ["--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    return command


def register(app: typer.Typer) -> None:
    @app.command()
    def ui(
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8501,
        host: Annotated[str, typer.Option(help="interface to listen on (0.0.0.0: every interface)")] = "127.0.0.1",
        headless: Annotated[bool, typer.Option("--headless", help="do not open a browser")] = False,
    ) -> None:
        """Serve the UI for procurement and finance: data, usage, plans, what-ifs, approvals, savings,
        allocation and anomalies, on the same database as `commitplan serve`."""
        typer.echo(f"commitplan UI on http://{host}:{port}", err=True)
        child = subprocess.Popen(streamlit_command(port, host, headless))

        def stop(signum: int, _frame: object) -> None:  # a stopped `commitplan ui` stops its server too
            child.send_signal(signal.SIGTERM)

        signal.signal(signal.SIGTERM, stop)
        try:
            code = child.wait()
        except KeyboardInterrupt:
            child.send_signal(signal.SIGINT)
            code = child.wait()
        raise typer.Exit(code)
