"""The bad-input corpus (bad_input/cases.yaml): every case errors clearly, quarantines, skips
or notes, as the case says.

An error must name the source and say what is wrong and what to do; a quarantine must carry
the case's reason and location; a skip its reason and metric; a note must be in the report; a
``clean`` case quarantines nothing; and the row accounting must hold (read = loaded + skipped +
quarantined) while the good rows of the same file still load.
"""

import http.server
import json
import re
import threading
from datetime import timedelta
from pathlib import Path

import polars as pl
import pytest
import yaml

from telemetry.ingest import IngestError, prepare
from tests.telemetry.ingest.frames import NOW, START

CORPUS = Path(__file__).with_name("bad_input")
CASES = yaml.safe_load((CORPUS / "cases.yaml").read_text())
SECRET = "s3cret-password"


def _case_id(case: dict) -> str:
    return case.get("file") or case["name"]


class FakePrometheus(http.server.BaseHTTPRequestHandler):
    """Answers every request as the case says: a status and body, or nothing for a while."""

    answer: dict = {}

    def do_GET(self):  # noqa: N802 (the http.server API)
        if self.answer.get("delay_s"):
            threading.Event().wait(self.answer["delay_s"])
        body = self.answer.get("body", "").encode()
        try:
            self.send_response(self.answer.get("status", 200))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def log_message(self, *args):
        pass


def _serve(answer: dict):
    handler = type("Handler", (FakePrometheus,), {"answer": answer})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _closed_port() -> int:
    server = http.server.HTTPServer(("127.0.0.1", 0), FakePrometheus)
    port = server.server_address[1]
    server.server_close()
    return port


def _load(case: dict):
    options = case.get("options", {})
    if "file" in case:
        path = str(CORPUS / case["file"])
        return prepare([path], now=NOW, **options), path
    if case["http"] == "unreachable":
        url = f"prometheus+http://admin:{SECRET}@127.0.0.1:{_closed_port()}"
        server = None
    else:
        server = _serve(case["http"])
        url = f"prometheus+http://admin:{SECRET}@127.0.0.1:{server.server_address[1]}"
    try:
        window = {"start": START, "end": START + timedelta(minutes=5)}
        options = {"service": "chat", **options}
        return prepare([url], timeout_s=1.0, now=NOW, **window, **options), url
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()


def test_the_corpus_is_large_and_distinct():
    assert len(CASES) >= 25
    assert len({_case_id(c) for c in CASES}) == len(CASES)
    files = {p.name for p in CORPUS.iterdir() if p.name != "cases.yaml"}
    assert files == {c["file"] for c in CASES if "file" in c}, "every file is a case"


@pytest.mark.parametrize("case", CASES, ids=_case_id)
def test_bad_input_errors_clearly_or_quarantines(case):
    if "error" in case:
        with pytest.raises(IngestError) as caught:
            _load(case)
        message = str(caught.value)
        assert re.search(case["error"], message), message
        assert caught.value.fix, "the error says what to do"
        assert SECRET not in message, "credentials never appear in messages"
        if "file" in case:
            assert case["file"] in caught.value.source
        return
    prepared, _ = _load(case)
    bad = prepared.canonical.quarantine
    if "quarantine" in case:
        hits = bad.filter(bad["reason"] == case["quarantine"])
        assert hits.height, f"no {case['quarantine']} row in {bad.to_dicts()}"
        assert all(hits["detail"].to_list()), "each quarantine row says what is wrong"
        if "location" in case:
            locations = hits["location"].to_list()
            assert any(case["location"] in loc for loc in locations), hits.to_dicts()
    if case.get("clean"):
        assert bad.height == 0, bad.to_dicts()
    if "skipped" in case:
        aside = prepared.canonical.skipped.filter(pl.col("reason") == case["skipped"])
        assert aside.height, prepared.canonical.skipped.to_dicts()
        if "metric" in case:
            assert case["metric"] in aside["metric"].to_list(), aside.to_dicts()
    if "note" in case:
        notes = prepared.canonical.notes
        assert case["note"] in notes, notes
        assert re.search(case.get("note_match", ""), json.dumps(notes[case["note"]]))
    if "service" in case:
        loaded = prepared.canonical.instance_samples
        assert loaded.height and set(loaded["service"]) == {case["service"]}
    loaded, skipped = prepared.canonical.rows_loaded, prepared.rows_skipped
    assert prepared.rows_read == loaded + skipped + prepared.rows_quarantined
