"""``commitplan keys …`` and ``commitplan audit verify``: thin over :mod:`store`."""

from __future__ import annotations

import json
import sys
from typing import Annotated

import typer

import store


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="API keys: create (the key is printed once), list, revoke.", no_args_is_help=True)
    audit = typer.Typer(help="The audit log's hash chain.", no_args_is_help=True)
    app.add_typer(keys, name="keys")
    app.add_typer(audit, name="audit")

    @keys.command("create")
    def keys_create(
        role: Annotated[store.Role, typer.Option(help="viewer, procurement, finance or admin")],
        name: Annotated[str, typer.Option(help="the person or service using the key")],
    ) -> None:
        """Create an API key and print it (only its hash is stored: it cannot be shown again)."""
        with store.connect()() as s:
            key, token = store.create_key(s, name, role)
        typer.echo(token)
        typer.echo(f"key {key.prefix} for {key.name} ({key.role}): store it now, it is not shown again", err=True)

    @keys.command("revoke")
    def keys_revoke(key_id: Annotated[str, typer.Argument(help="the key's id")]) -> None:
        with store.connect()() as s:
            if not store.revoke_key(s, key_id):
                typer.echo(f"error: no live key {key_id}", err=True)
                raise typer.Exit(2)

    @audit.command("verify")
    def audit_verify(as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
        """Check the hash chain and that approved plans are unchanged; exit 1 on any problem."""
        with store.connect()() as s:
            result = store.verify(s)
            plans = store.verify_approved(s)
        if as_json:
            sys.stdout.write(json.dumps({**result.to_dict(), "approved_plan_problems": plans}) + "\n")
        else:
            typer.echo(f"{result.message}; {result.checked} entries checked; head seq {result.head_seq} "
                       f"hash {result.head_hash}")
            for p in plans:
                typer.echo(p)
        if not result.ok or plans:
            raise typer.Exit(1)
