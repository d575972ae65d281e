"""``commitplan keys create`` and ``commitplan audit verify`` on the embedded default database."""

from __future__ import annotations

import json
import sqlite3

from typer.testing import CliRunner

from api.cli import app

runner = CliRunner()


def test_key_printed_once_works_and_an_edited_audit_row_is_caught(tmp_path, monkeypatch):
    import store

    monkeypatch.setenv("COMMITPLAN_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("COMMITPLAN_DATABASE_URL", raising=False)
    created = runner.invoke(app, ["keys", "create", "--role", "finance", "--name", "fiona"])
    assert created.exit_code == 0, created.output
    token = created.stdout.strip()
    database = tmp_path / "commitplan.db"
    assert token.startswith("cp_") and token.encode() not in database.read_bytes()
    with store.connect()() as session:
        key = store.authenticate(session, token)
        assert key is not None and (key.name, key.role) == ("fiona", "finance")
        assert store.authenticate(session, token[:-1] + ("0" if token[-1] != "0" else "1")) is None

    verified = runner.invoke(app, ["audit", "verify", "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.stdout)["ok"] is True

    with sqlite3.connect(database) as connection:
        connection.execute("UPDATE audit_log SET actor = 'mallory' WHERE seq = 1")
    tampered = runner.invoke(app, ["audit", "verify"])
    assert tampered.exit_code == 1 and "seq 1 was edited" in tampered.stdout
