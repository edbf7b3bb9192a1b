"""``lightning-bohb dashboard``: a local web page that watches sessions live and steers them.

What it shows comes from the session files only (``session_state.summary.yaml`` and Tune's
``result.json`` per trial, through `lightning_bohb.session.history`), polled by the page every
1.5 s: it never talks to a driver, so it costs a running search nothing and can watch a session
whose driver runs elsewhere (shared storage). Its buttons run what the console commands run:
``pause`` / ``pause --now`` for a session (signals its driver, same host), ``resume`` as a detached
process whose output goes to ``<session>/resume.log``, and ``trial pause|continue|stop`` (a request
file the driver reads).

Security, as Jupyter does it: it binds 127.0.0.1 unless told otherwise (then it warns); a random
token, printed in the start URL, is required on every request (query ``token``, header
``X-LB-Token`` or the cookie it is exchanged for) and a wrong or missing one gets 403 with nothing
done. The page's first load exchanges the URL's token for a cookie (HttpOnly, SameSite=Strict,
named for the port) and redirects to the same URL without it, so the token stays out of links and
the browser's history. A control is a POST that must carry the token in the header (a cross-site
form cannot set it), and ``--read-only`` removes every control. A request whose ``Host`` header is
not the address and port served is refused (DNS rebinding). Sessions are addressed by their path
below the served folder, checked against the sessions found there: no path from a request is ever
opened as such.

Nothing blocks the server's event loop: every route that reads files or waits runs on a worker
thread, and ``resume.log`` is opened without blocking (a FIFO planted there is refused) and never
through a link.
"""

# No `from __future__ import annotations`: FastAPI reads the route functions' annotations at run time.

import ipaddress
import os
import secrets
import socket
import stat
import subprocess
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from lightning_bohb.cli import export
from lightning_bohb.cli.sessions import find_sessions, state_label
from lightning_bohb.exceptions import LightningTuneError, SessionError
from lightning_bohb.pause.trial_status import TrialAction, TrialStatus
from lightning_bohb.session.backend import open_session
from lightning_bohb.session.history import SessionHistory, metric_of, summary_trials
from lightning_bohb.session.importance import param_importance
from lightning_bohb.session.owner_record import lock_is_live, read_lock
from lightning_bohb.session.state import SessionStatus, read_summary
from lightning_bohb.utils.layout import RESUME_LOG, SUMMARY_FILE

TOKEN_HEADER = "X-LB-Token"
COOKIE_PREFIX = "lb_token_"  # + the port: a browser shares cookies between the ports of one host
POLL_MS = 1500
_SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",  # the first URL has the token: never send it on
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
}


def _require_web() -> None:
    try:
        import fastapi  # noqa: F401
        import plotly  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as err:
        raise LightningTuneError(
            f"The dashboard needs FastAPI, uvicorn and plotly: pip install 'lightning-bohb[dashboard]' (ImportError: {err})"
        ) from err


class Sessions:
    """The sessions the dashboard serves: those under ``root``, or ``root`` itself if it is one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.single = (root / SUMMARY_FILE).is_file()
        self._histories: Dict[str, SessionHistory] = {}
        self._importance: Dict[str, Tuple[Any, Dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def find(self) -> List[Tuple[str, Path, Dict[str, Any], Optional[str]]]:
        """``(key, folder, summary, problem)`` for every session served."""
        if self.single:
            try:
                return [(self.root.name, self.root, read_summary(self.root), None)]
            except SessionError as err:
                return [(self.root.name, self.root, {}, str(err))]
        return [(name, session.folder, summary, problem) for session, name, summary, problem in find_sessions(str(self.root))]

    def get(self, key: str) -> Tuple[Path, Dict[str, Any]]:
        """The session named ``key`` by `find`; `KeyError` for any other name."""
        for found_key, folder, summary, problem in self.find():
            if found_key == key:
                if problem:
                    raise SessionError(problem)
                return folder, summary
        raise KeyError(key)

    def history(self, key: str, folder: Path) -> SessionHistory:
        with self._lock:
            history = self._histories.get(key)
            if history is None or history.session_dir != folder:
                history = self._histories[key] = SessionHistory(folder)
            return history

    def importance(self, key: str, data: Dict[str, Any]) -> Dict[str, Any]:
        """`param_importance` of the chart data, computed again only when a trial's values or best changed."""
        signature = tuple((t["id"], t["best"], repr(sorted(t["config"].items()))) for t in data["trials"])
        with self._lock:
            cached = self._importance.get(key)
        if cached is not None and cached[0] == signature:
            return cached[1]
        result = param_importance(data["trials"], data["mode"], data.get("searched") or None)
        with self._lock:
            self._importance[key] = (signature, result)
        return result


def session_row(key: str, folder: Path, summary: Dict[str, Any], problem: Optional[str]) -> Dict[str, Any]:
    if problem:
        return {"key": key, "state": "UNREADABLE", "problem": problem}
    metric, _ = metric_of(summary)
    trials = summary_trials(summary)
    done = sum(1 for row in trials.values() if row.get("status") == TrialStatus.TERMINATED)
    best = summary.get("best") if isinstance(summary.get("best"), dict) else None
    return {
        "key": key,
        "session_id": summary.get("session_id"),
        "experiment": summary.get("experiment_name"),
        "state": state_label(folder, summary),
        "started_at": str(summary.get("started_at") or ""),
        "updated_at": str(summary.get("updated_at") or ""),
        "paused_at": str(summary.get("paused_at") or ""),
        "done": done,
        "started": len(trials),
        "running": sum(1 for row in trials.values() if row.get("status") == TrialStatus.RUNNING),
        "total": summary.get("num_samples") or len(trials),
        "metric": metric,
        "best": best.get(metric) if best and metric else None,
        "best_trial": best.get("trial") if best else None,
    }


def session_detail(sessions: Sessions, key: str) -> Dict[str, Any]:
    folder, summary = sessions.get(key)
    row = session_row(key, folder, summary, None)
    state = row["state"]
    charts = export.report_data(folder, summary, sessions.history(key, folder), lambda data: sessions.importance(key, data))
    backend = open_session(folder)  # the commands built from the folder: never read from a file someone could plant
    return {
        **row,
        "folder": str(folder),
        "strategy": summary.get("strategy"),
        "pause_count": summary.get("pause_count", 0),
        "resume_command": backend.resume_command(),
        "pause_command": backend.pause_command(),
        "resumable": resumable(state),
        "is_running": state == SessionStatus.RUNNING.value,
        "pause_pending": bool((summary.get("pause") or {}).get("pause_requested")) if isinstance(summary.get("pause"), dict) else False,
        "resume_log": _tail(folder / RESUME_LOG),
        "best_searched": export.searched_text(charts),
        "best_config": export.best_config_text(folder, summary),
        "charts": charts,
    }


def resumable(state: str) -> bool:
    return state in (SessionStatus.PAUSED.value, SessionStatus.FAILED.value) or state.startswith("RUNNING (stale")


def _tail(path: Path, limit: int = 4000) -> Optional[str]:
    """The end of a regular file; None when there is none (missing, a link, a FIFO or anything else)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return None
        handle.seek(max(0, info.st_size - limit))
        return handle.read(limit).decode(errors="replace")


class Controls:
    """What the buttons do: the console commands, in the background where they wait."""

    def __init__(self) -> None:
        self.messages: Dict[str, str] = {}
        self._busy: Dict[str, threading.Thread] = {}

    def pause(self, key: str, folder: Path, now: bool) -> str:
        from lightning_bohb.cli.commands.pause import pause

        if not lock_is_live(read_lock(folder)):
            raise SessionError(f"Session {folder} is not running.")
        busy = self._busy.get(key)
        if busy is not None and busy.is_alive() and not now:
            return "A pause is already under way."

        def work() -> None:
            try:
                pause(str(folder), now=now, timeout=900.0)
                self.messages[key] = "Session paused." if not now else "Session stopped (quit)."
            except Exception as err:  # shown on the page
                self.messages[key] = f"error: {err}"

        thread = threading.Thread(target=work, name=f"lightning_bohb-dashboard-pause-{key}", daemon=True)
        self._busy[key] = thread
        self.messages[key] = "Quitting now..." if now else "Pause requested: trials pause at their next validated epoch end..."
        thread.start()
        return self.messages[key]

    def resume(self, key: str, folder: Path, summary: Dict[str, Any]) -> str:
        state = state_label(folder, summary)
        if not resumable(state) or lock_is_live(read_lock(folder)):
            raise SessionError(f"Session {folder} is {state}: nothing to resume.")
        log = folder / RESUME_LOG
        try:  # never blocks (a FIFO without a reader: ENXIO) and never follows a link
            fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, 0o600)
        except OSError as err:
            raise SessionError(f"Cannot open {log} for the resume's output: {err.strerror or err}. Remove it and try again.") from None
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise SessionError(f"{log} is not a regular file (a FIFO or a device?); remove it and try again.")
            os.set_blocking(fd, True)
            os.write(fd, f"\n--- resumed from the dashboard at {time.strftime('%Y-%m-%d %H:%M:%S')} ---\n".encode())
            process = subprocess.Popen(
                [sys.executable, "-m", "lightning_bohb", "resume", str(folder)],
                stdin=subprocess.DEVNULL,
                stdout=fd,
                stderr=fd,
                start_new_session=True,  # detached: it outlives the dashboard
                close_fds=True,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
        finally:
            os.close(fd)
        self.messages[key] = f"Resuming (pid {process.pid}); its output goes to {log}."
        return self.messages[key]


def create_app(root: Path, token: str, read_only: bool = False, port: int = 0, hosts: Optional[Set[str]] = None) -> Any:
    """The FastAPI application: every route checks ``token``; with ``hosts``, the ``Host`` header too."""
    from fastapi import FastAPI, Request
    from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
    from starlette.concurrency import run_in_threadpool

    sessions = Sessions(root)
    controls = Controls()
    app = FastAPI(title="LightningTune dashboard", docs_url=None, redoc_url=None, openapi_url=None)
    plotly_cache: Dict[str, str] = {}
    cookie = f"{COOKIE_PREFIX}{port}"

    def valid(given: str) -> bool:
        return bool(given) and secrets.compare_digest(given.encode(), token.encode())

    @app.middleware("http")
    async def check_token(request: Request, call_next: Callable[[Request], Any]) -> Any:
        query = "" if request.method == "POST" else request.query_params.get("token", "")
        if request.method == "POST":  # a control: the header only (a cross-site form sends the cookie, not the header)
            allowed = valid(request.headers.get(TOKEN_HEADER, ""))
        else:
            allowed = valid(request.headers.get(TOKEN_HEADER, "")) or valid(request.cookies.get(cookie, "")) or valid(query)
        if hosts is not None and request.headers.get("host", "").lower() not in hosts:
            response: Any = PlainTextResponse(f"403 Forbidden: this dashboard answers only as {sorted(hosts)[0]}.", 403)
        elif not allowed:
            response = PlainTextResponse("403 Forbidden: a valid token is required (open the URL the dashboard printed).", 403)
        elif request.method == "POST" and read_only:
            response = PlainTextResponse("403 Forbidden: this dashboard is read-only.", 403)
        elif request.method == "GET" and request.url.path == "/" and valid(query):
            # The start URL: the token becomes a cookie and the address bar (and history) a URL without it.
            rest = urllib.parse.urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
            response = RedirectResponse("/" + (f"?{rest}" if rest else ""), 303)
            response.set_cookie(cookie, token, httponly=True, samesite="strict", path="/")
        else:
            response = await call_next(request)
        response.headers.update(_SECURITY_HEADERS)
        return response

    def page() -> HTMLResponse:
        body = export.asset("dashboard.html").replace("<!--LB:TOKEN-->", token).replace(
            "<!--LB:READONLY-->", "true" if read_only else "false"
        ).replace("<!--LB:ROOT-->", _html(str(root))).replace("<!--LB:POLL-->", str(POLL_MS))
        return HTMLResponse(body)

    @app.get("/")
    def index() -> HTMLResponse:
        return page()

    @app.get("/static/{name}")
    def static(name: str) -> Response:
        if name == "plotly.min.js":
            if "js" not in plotly_cache:
                plotly_cache["js"] = export.plotly_js()
            return Response(plotly_cache["js"], media_type="text/javascript")
        if name in ("charts.js", "dashboard.js"):
            return Response(export.asset(name), media_type="text/javascript")
        if name == "style.css":
            return Response(export.asset(name), media_type="text/css")
        return PlainTextResponse("not found", 404)

    @app.get("/api/sessions")
    def api_sessions() -> Any:
        rows = [session_row(*found) for found in sessions.find()]
        rows.sort(key=lambda row: row.get("started_at") or "", reverse=True)
        return {"root": str(root), "read_only": read_only, "sessions": rows}

    def _detail(key: str) -> Any:
        try:
            return session_detail(sessions, key)
        except KeyError:
            return None

    @app.get("/api/session")
    def api_session(key: str) -> Any:
        try:
            detail = _detail(key)
        except SessionError as err:
            return JSONResponse({"error": str(err)}, 409)
        if detail is None:
            return JSONResponse({"error": f"no session {key!r} here"}, 404)
        detail["message"] = controls.messages.get(key)
        return detail

    @app.get("/api/best_config")
    def best_config(key: str) -> Any:
        try:
            folder, summary = sessions.get(key)
        except (KeyError, SessionError):
            return PlainTextResponse("not found", 404)
        name = f"best_config_{summary.get('session_id') or 'session'}.yaml"
        name = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)
        return PlainTextResponse(
            export.best_config_text(folder, summary), media_type="application/x-yaml",
            headers={"Content-Disposition": f'attachment; filename="{name}"'},
        )

    def control_action(body: Any) -> Any:
        if not isinstance(body, dict):
            return JSONResponse({"error": "expected a JSON object"}, 400)
        key, action, trial_id = body.get("session"), body.get("action"), body.get("trial")
        if not isinstance(key, str) or not isinstance(action, str):
            return JSONResponse({"error": "session and action are required"}, 400)
        try:
            folder, summary = sessions.get(key)
            if action == "pause":
                message = controls.pause(key, folder, now=False)
            elif action == "quit":
                message = controls.pause(key, folder, now=True)
            elif action == "resume":
                message = controls.resume(key, folder, summary)
            elif action in {f"trial_{trial_action}" for trial_action in TrialAction}:
                from lightning_bohb.cli.commands import trial

                if not isinstance(trial_id, str):
                    return JSONResponse({"error": "trial is required"}, 400)
                message = trial.request(str(folder), action.split("_", 1)[1], trial_id, wait=3.0, quiet=True)
            else:
                return JSONResponse({"error": f"unknown action {action!r}"}, 400)
        except KeyError:
            return JSONResponse({"error": f"no session {key!r} here"}, 404)
        except SessionError as err:
            return JSONResponse({"error": str(err)}, 409)
        controls.messages[key] = message
        return {"message": message}

    @app.post("/api/control")
    async def control(request: Request) -> Any:
        try:
            body = await request.json()
        except ValueError:
            return JSONResponse({"error": "expected a JSON body"}, 400)
        return await run_in_threadpool(control_action, body)  # it reads files and waits: never on the event loop

    return app


def _html(text: str) -> str:
    import html

    return html.escape(text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def loopback_hosts(host: str, port: int) -> Set[str]:
    """The ``Host`` headers a dashboard bound to a loopback address answers (any other: DNS rebinding)."""
    names = {host, "localhost", "127.0.0.1", "::1"} if host in ("localhost", "127.0.0.1", "::1") else {host}
    return {f"[{name}]:{port}" if ":" in name else f"{name}:{port}" for name in names}


class DashboardServer:
    """The dashboard's uvicorn server on a socket bound at once (``port`` 0: any free port); `url` has the token."""

    def __init__(self, path: str, host: str = "127.0.0.1", port: int = 8750, read_only: bool = False, token: Optional[str] = None) -> None:
        _require_web()
        import uvicorn

        self.root = Path(path).expanduser().resolve()
        if not self.root.is_dir():
            raise SessionError(f"Not a folder: {self.root}. Give an experiment folder (--experiment-dir) or a session folder.")
        self.host, self.read_only = host, read_only
        self.token = token or secrets.token_urlsafe(24)
        self.sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind((host, port))
        except OSError as err:
            self.sock.close()
            why = err.strerror or err
            raise SessionError(f"Cannot serve on {host}:{port}: {why}. Choose another with --port (0: any free port).") from None
        self.sock.listen(64)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{f'[{host}]' if ':' in host else host}:{self.port}/?token={self.token}"
        hosts = loopback_hosts(host, self.port) if is_loopback(host) else None
        app = create_app(self.root, self.token, read_only, port=self.port, hosts=hosts)
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
        self.server = uvicorn.Server(config)

    def run(self) -> None:
        """Serve until `stop` (or Ctrl+C on the main thread)."""
        try:
            self.server.run(sockets=[self.sock])
        finally:
            self.sock.close()

    def stop(self) -> None:
        self.server.should_exit = True


def serve(path: str, host: str = "127.0.0.1", port: int = 8750, read_only: bool = False) -> int:
    """Serve until interrupted; prints the URL (with the token) to open."""
    server = DashboardServer(path, host, port, read_only)
    if not is_loopback(host):
        print(
            f"warning: serving on {host}, reachable from other machines: anyone who can reach this port and has the "
            "token can pause and resume your sessions, and traffic is not encrypted. Prefer the default 127.0.0.1 with "
            "an SSH tunnel.", file=sys.stderr, flush=True,
        )
    print(f"LightningTune dashboard of {server.root}{' (read-only)' if read_only else ''}:", flush=True)
    print(f"    {server.url}", flush=True)
    tunnel = f"ssh -L {server.port}:127.0.0.1:{server.port} {socket.gethostname()}"
    print(f"From another machine: {tunnel}  then open the URL there.", flush=True)
    server.run()
    return 0
