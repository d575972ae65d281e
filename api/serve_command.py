"""``commitplan serve``: run the HTTP API with uvicorn."""

from __future__ import annotations

from typing import Annotated, Optional

import typer


def register(app: typer.Typer) -> None:
    @app.command()
    def serve(
        host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port")] = 8000,
        workers_jobs: Annotated[Optional[int], typer.Option("--workers-jobs", min=1, max=64,
                                help="plans solved at the same time (default: COMMITPLAN_JOB_WORKERS or 2)")] = None,
        max_upload_mb: Annotated[Optional[int], typer.Option(min=1, help="largest upload in MB (default 50)")] = None,
    ) -> None:
        """Serve the HTTP API (OpenAPI at /v1/openapi.json, docs at /v1/docs) on the configured database."""
        import uvicorn

        from api.app import create_app
        from api.settings import MB, Settings

        settings = Settings.from_env(job_workers=workers_jobs,
                                     max_upload_bytes=max_upload_mb * MB if max_upload_mb else None)
        typer.echo(f"commitplan API on http://{host}:{port}/v1/docs (database {_redact(settings.database_url)})",
                   err=True)
        uvicorn.run(create_app(settings), host=host, port=port)


def _redact(url: str) -> str:
    from sqlalchemy import make_url

    return make_url(url).render_as_string(hide_password=True)
