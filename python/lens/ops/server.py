"""The admin HTTP API (`lens serve`, extra `lens[server]`): the runbook's endpoints over Starlette.

    GET  /health                          GET  /monitoring/dashboard          GET /metrics
    GET  /canary/status                   POST /canary/progress {"reason"?}   POST /canary/start {"reason"}
    POST /canary/killswitch {"reason"}
    GET  /validation/quality-gates        POST /validation/quality-gates
    GET  /validation/status               POST /validation/nightly {"force_night", "duration_minutes"}
    GET  /validation/signoff-report[?version=]
    GET  /compat/check?api_version=&index_version=        GET /compat/bundles?allow_compat=
    POST /search {"query", "k", "mode"}

Security: every mutating endpoint wants `Authorization: Bearer <token>`, the token coming from
`LENS_ADMIN_TOKEN` or `admin_token` in the config file, compared in constant time; with no token
configured they refuse (403), so a forgotten setting fails closed. `lens serve` binds 127.0.0.1 unless told
otherwise. Bodies over `max_body` bytes get 413; malformed JSON, unknown or missing parameters and wrong
types get 400 with a message. Long work runs off the event loop: native search and the gates in the
thread pool, a night in a background thread that `/validation/status` reports on.
"""

from __future__ import annotations

import hmac
import math
import os
import sys
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import lens

from .. import INDEX_FORMAT_VERSION, __version__
from .._log import get_logger
from ..canary import CanaryError
from ..errors import LensError, QueryError
from ..index import Index
from .gates import run_quality_gates
from .golden import GoldenSet, stdlib_golden_set
from .nightly import REQUIRED_NIGHTS, run_nightly, signoff, streak
from .release import API_VERSION, ReleaseError, check_compat, compat_bundles
from .state import OpsStore

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = ["DEFAULT_MAX_BODY", "admin_token_from", "create_app", "serve"]

_log = get_logger("lens.ops.server")
DEFAULT_MAX_BODY = 64 * 1024
MODES = ("lex", "symbol", "hybrid", "auto")
MAX_K = 1000


class HTTPError(Exception):
    def __init__(self, status: int, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.message, self.extra = status, message, extra


def admin_token_from(
    environ: Mapping[str, str] | None = None, config: str | os.PathLike[str] | None = None
) -> str | None:
    """`LENS_ADMIN_TOKEN`, else `admin_token` in the config file (`config`, `$LENS_SERVER_CONFIG`, or
    `$XDG_CONFIG_HOME/lens/server.toml`). An empty token counts as none."""
    env = os.environ if environ is None else environ
    if env.get("LENS_ADMIN_TOKEN", "").strip():
        return env["LENS_ADMIN_TOKEN"].strip()
    if config is None:
        config = env.get("LENS_SERVER_CONFIG") or (
            Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config") / "lens" / "server.toml"
        )
    p = Path(config)
    if not p.is_file():
        return None
    try:
        doc = tomllib.loads(p.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise LensError(f"cannot read server config {p}: {exc}") from exc
    tok = doc.get("admin_token")
    if tok is not None and not isinstance(tok, str):
        raise LensError(f"{p}: admin_token must be a string")
    return tok.strip() if tok and tok.strip() else None


@dataclass
class _Night:
    id: int
    request: dict[str, Any]
    state: str = "running"
    started_at: float = field(default_factory=time.time)
    finished_at: float | None = None
    result: dict[str, Any] | None = None
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        res = self.result
        return {
            "id": self.id,
            "state": self.state,
            "request": self.request,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "error": self.error,
            "night": None if res is None else {k: res[k] for k in ("id", "night", "passed", "failures")},
        }


@dataclass
class _Ctx:
    index: Index | None
    store: OpsStore
    token: str | None
    max_body: int
    golden: Callable[[], GoldenSet]
    gate_options: dict[str, Any]
    night_options: dict[str, Any]
    started: float = field(default_factory=time.time)
    lock: threading.Lock = field(default_factory=threading.Lock)
    night: _Night | None = None
    nights_started: int = 0

    @property
    def canary(self) -> Any:
        return self.index.canary if self.index is not None else lens.canary

    def dashboard(self) -> dict[str, Any]:
        return self.index.dashboard() if self.index is not None else lens.dashboard()

    def metrics(self) -> str:
        return self.index.metrics_text() if self.index is not None else lens.metrics_text()


# -- request parsing --------------------------------------------------------------------------------


async def _body(request: Request, ctx: _Ctx) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise HTTPError(400, "bad Content-Length") from None
        if n > ctx.max_body:
            raise HTTPError(413, f"request body over {ctx.max_body} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > ctx.max_body:
            raise HTTPError(413, f"request body over {ctx.max_body} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


_Spec = Mapping[str, tuple[tuple[type, ...], bool]]  # name -> (accepted types, required)


async def _json(request: Request, ctx: _Ctx, spec: _Spec) -> dict[str, Any]:
    import json

    raw = await _body(request, ctx)
    if not raw.strip():
        doc: Any = {}
    else:
        try:
            doc = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HTTPError(400, f"malformed JSON body: {exc}") from None
    if not isinstance(doc, dict):
        raise HTTPError(400, "the body must be a JSON object")
    unknown = sorted(set(doc) - set(spec))
    if unknown:
        raise HTTPError(
            400, f"unknown parameter(s): {', '.join(unknown)}; allowed: {', '.join(sorted(spec)) or 'none'}"
        )
    for name, (types, required) in spec.items():
        if name not in doc or doc[name] is None:
            if required:
                raise HTTPError(400, f"missing parameter: {name}")
            continue
        v = doc[name]
        # bool is an int in Python; a JSON true is never a count.
        if not isinstance(v, types) or (isinstance(v, bool) and bool not in types):
            want = " or ".join(t.__name__ for t in types)
            raise HTTPError(400, f"parameter {name} must be {want}, not {type(v).__name__}")
        if isinstance(v, float) and not math.isfinite(v):
            raise HTTPError(400, f"parameter {name} must be finite")
    return doc


def _query(request: Request, allowed: tuple[str, ...]) -> dict[str, str]:
    unknown = sorted(set(request.query_params) - set(allowed))
    if unknown:
        raise HTTPError(
            400, f"unknown query parameter(s): {', '.join(unknown)}; allowed: {', '.join(allowed) or 'none'}"
        )
    return dict(request.query_params)


def _admin(request: Request, ctx: _Ctx) -> None:
    if not ctx.token:
        raise HTTPError(
            403, "admin endpoints are disabled: set LENS_ADMIN_TOKEN or admin_token in the server config"
        )
    auth = request.headers.get("authorization", "")
    scheme, _, given = auth.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), ctx.token.encode()):
        raise HTTPError(401, "a valid bearer token is required", headers={"WWW-Authenticate": "Bearer"})


def _ctx(request: Request) -> _Ctx:
    ctx: _Ctx = request.app.state.ctx
    return ctx


Handler = Callable[[Request], Awaitable[Response]]


def _endpoint(fn: Callable[[Request, _Ctx], Awaitable[Any]], admin: bool = False) -> Handler:
    async def handle(request: Request) -> Response:
        ctx = _ctx(request)
        try:
            if admin:
                _admin(request, ctx)
            out = await fn(request, ctx)
        except HTTPError as e:
            headers = e.extra.pop("headers", None)
            return JSONResponse({"error": e.message, **e.extra}, status_code=e.status, headers=headers)
        except (QueryError, ReleaseError) as e:
            return JSONResponse({"error": str(e)}, status_code=400)
        except CanaryError as e:
            return JSONResponse({"error": str(e), "reasons": e.reasons}, status_code=409)
        except Exception as e:  # a bug: answered as one, logged with its traceback, never a dead server
            _log.error("admin_api_error", path=request.url.path, error=repr(e), tb=traceback.format_exc())
            return JSONResponse({"error": f"internal error: {type(e).__name__}"}, status_code=500)
        if isinstance(out, Response):
            return out
        status, doc = out if isinstance(out, tuple) else (200, out)
        return JSONResponse(doc, status_code=status)

    return handle


# -- endpoints ----------------------------------------------------------------------------------------


async def health(request: Request, ctx: _Ctx) -> Any:
    _query(request, ())
    d = (await run_in_threadpool(ctx.dashboard))["dashboard_state"]
    idx = None
    if ctx.index is not None:
        idx = {"index_dir": str(ctx.index.index_dir), "root": str(ctx.index.root)}
    return {
        "status": d["health"]["status"],
        "health": d["health"],
        "lens_version": __version__,
        "api_version": API_VERSION,
        "index_format_version": INDEX_FORMAT_VERSION,
        "uptime_s": time.time() - ctx.started,
        "index": idx,
        "canary": {
            "trafficPercentage": d["canary"]["trafficPercentage"],
            "killSwitch": d["canary"]["killSwitch"]["active"],
        },
        "state_db": {"path": str(ctx.store.path), "schema_version": ctx.store.schema_version()},
        "admin_enabled": bool(ctx.token),
    }


async def dashboard(request: Request, ctx: _Ctx) -> Any:
    _query(request, ())
    return await run_in_threadpool(ctx.dashboard)


async def canary_status(request: Request, ctx: _Ctx) -> Any:
    _query(request, ())
    return ctx.canary.status()


async def canary_progress(request: Request, ctx: _Ctx) -> Any:
    body = await _json(request, ctx, {"reason": ((str,), False)})
    return await run_in_threadpool(ctx.canary.progress, body.get("reason"))


async def canary_start(request: Request, ctx: _Ctx) -> Any:
    body = await _json(request, ctx, {"reason": ((str,), True)})
    return ctx.canary.start(body["reason"])


async def killswitch(request: Request, ctx: _Ctx) -> Any:
    body = await _json(request, ctx, {"reason": ((str,), True)})
    if not body["reason"].strip():
        raise HTTPError(400, "reason must not be empty")
    return await run_in_threadpool(ctx.canary.kill_switch, body["reason"])


async def gates_get(request: Request, ctx: _Ctx) -> Any:
    _query(request, ())
    report = ctx.store.latest_gate_report()
    if report is None:
        raise HTTPError(404, "no quality gate run recorded yet: POST /validation/quality-gates runs one")
    return report


async def gates_post(request: Request, ctx: _Ctx) -> Any:
    await _json(request, ctx, {})

    def run() -> dict[str, Any]:
        report = run_quality_gates(ctx.golden(), **ctx.gate_options)
        ctx.store.record_gate_run(report, source="http")
        return report

    return await run_in_threadpool(run)


def _current_rc(store: OpsStore) -> str | None:
    rels = [r for r in store.releases() if not any(p["version"] == r["version"] for p in store.promotions())]
    return rels[-1]["version"] if rels else None


async def validation_status(request: Request, ctx: _Ctx) -> Any:
    _query(request, ())

    def build() -> dict[str, Any]:
        nights = ctx.store.nights()
        rc = _current_rc(ctx.store)
        s = signoff(ctx.store, rc) if rc else None
        with ctx.lock:
            job = ctx.night.as_dict() if ctx.night else None
        return {
            "validation_status": {
                "nights": [
                    {
                        k: n[k]
                        for k in ("id", "night", "passed", "forced", "started_at", "finished_at", "failures")
                    }
                    for n in nights[-10:]
                ],
                "nights_recorded": len(nights),
                "consecutive_passing_nights": streak(nights),
                "required_nights": REQUIRED_NIGHTS,
                "current_rc": rc,
                "promotion_ready": bool(s and s["promotable"]),
                "signoff_reasons": s["reasons"] if s else ["no release candidate cut yet"],
                "nightly_job": job,
            }
        }

    return await run_in_threadpool(build)


async def nightly_post(request: Request, ctx: _Ctx) -> Any:
    body = await _json(
        request, ctx, {"force_night": ((int,), False), "duration_minutes": ((int, float), True)}
    )
    minutes = float(body["duration_minutes"])
    if not 0 <= minutes <= 24 * 60:
        raise HTTPError(400, "duration_minutes must be between 0 and 1440")
    force = body.get("force_night")
    with ctx.lock:
        if ctx.night is not None and ctx.night.state == "running":
            raise HTTPError(409, "a nightly validation is already running", job=ctx.night.as_dict())
        ctx.nights_started += 1
        job = _Night(ctx.nights_started, {"force_night": force, "duration_minutes": minutes})
        ctx.night = job

    def work() -> None:
        try:
            res = run_nightly(
                ctx.store, ctx.golden(), duration_s=minutes * 60, force_night=force, **ctx.night_options
            )
            with ctx.lock:
                job.result, job.state = res, "passed" if res["passed"] else "failed"
        except Exception as exc:
            _log.error("nightly_job_error", error=repr(exc), tb=traceback.format_exc())
            with ctx.lock:
                job.error, job.state = f"{type(exc).__name__}: {exc}", "error"
        finally:
            job.finished_at = time.time()

    threading.Thread(target=work, name=f"lens-nightly-job-{job.id}", daemon=True).start()
    return 202, {"accepted": True, "job": job.as_dict(), "poll": "/validation/status"}


async def signoff_report(request: Request, ctx: _Ctx) -> Any:
    q = _query(request, ("version",))
    version = q.get("version") or _current_rc(ctx.store)
    if version is None:
        raise HTTPError(404, "no release candidate cut yet: `lens cut-rc --version X.Y.Z-rc.N`")
    return {"signoff_report": await run_in_threadpool(signoff, ctx.store, version)}


async def compat_check(request: Request, ctx: _Ctx) -> Any:
    q = _query(request, ("api_version", "index_version"))
    missing = [k for k in ("api_version", "index_version") if not q.get(k)]
    if missing:
        raise HTTPError(400, f"missing query parameter(s): {', '.join(missing)}")
    return check_compat(q["api_version"], q["index_version"])


async def compat_bundles_get(request: Request, ctx: _Ctx) -> Any:
    q = _query(request, ("allow_compat",))
    raw = q.get("allow_compat", "false").strip().lower()
    if raw not in ("true", "false", "1", "0"):
        raise HTTPError(400, f"allow_compat must be true or false, not {q['allow_compat']!r}")
    return await run_in_threadpool(compat_bundles, ctx.store, raw in ("true", "1"))


async def search(request: Request, ctx: _Ctx) -> Any:
    body = await _json(request, ctx, {"query": ((str,), True), "k": ((int,), False), "mode": ((str,), False)})
    if ctx.index is None:
        raise HTTPError(503, "no index is being served: start with `lens serve --index DIR`")
    k = body.get("k", 10)
    mode = body.get("mode", "auto")
    if not 1 <= k <= MAX_K:
        raise HTTPError(400, f"k must be between 1 and {MAX_K}")
    if mode not in MODES:
        raise HTTPError(400, f"mode must be one of {', '.join(MODES)}")
    res = await run_in_threadpool(ctx.index.search, body["query"], k, mode=mode)
    info = {
        k_: v for k_, v in res.info.items() if isinstance(v, (str, int, float, bool, dict, list, type(None)))
    }
    return {
        "hits": [h.as_dict() for h in res.hits],
        "timings_ms": res.timings_ms,
        "truncated": res.truncated,
        "mode": res.mode,
        "path": res.path,
        "route": res.info.get("route"),
        "info": info,
    }


class _Families(Collector):
    def __init__(self, fams: list[Metric]) -> None:
        self.fams = fams

    def collect(self) -> Iterator[Metric]:
        return iter(self.fams)


def _ops_metrics(store: OpsStore) -> str:
    fams: list[Metric] = []
    report = store.latest_gate_report()
    passed = GaugeMetricFamily(
        "lens_quality_gate_passed",
        "Latest quality gate run (1 pass, 0 fail; absent: insufficient data)",
        labels=["gate"],
    )
    value = GaugeMetricFamily("lens_quality_gate_value", "Latest quality gate measurement", labels=["gate"])
    if report is not None:
        for g in report["quality_gates_report"]["gates"]:
            if g["passed"] is not None:
                passed.add_metric([g["gate"]], float(g["passed"]))
            if g["value"] is not None:
                value.add_metric([g["gate"]], float(g["value"]))
    nights = store.nights()
    streak_g = GaugeMetricFamily("lens_validation_consecutive_passing_nights", "Trailing passing nights")
    streak_g.add_metric([], float(streak(nights)))
    fams += [passed, value, streak_g]
    if nights:
        last = GaugeMetricFamily("lens_validation_last_night_passed", "Latest night (1 pass, 0 fail)")
        last.add_metric([], float(nights[-1]["passed"]))
        fams.append(last)
    reg = CollectorRegistry(auto_describe=False)
    reg.register(_Families(fams))
    return generate_latest(reg).decode("utf-8")


async def metrics(request: Request, ctx: _Ctx) -> Any:
    _query(request, ())
    text = await run_in_threadpool(lambda: ctx.metrics() + _ops_metrics(ctx.store))
    return PlainTextResponse(text, media_type="text/plain; version=0.0.4; charset=utf-8")


def create_app(
    *,
    index: Index | None = None,
    store: OpsStore | None = None,
    admin_token: str | None = None,
    golden: Callable[[], GoldenSet] | None = None,
    max_body: int = DEFAULT_MAX_BODY,
    gate_options: Mapping[str, Any] | None = None,
    night_options: Mapping[str, Any] | None = None,
) -> Starlette:
    """The admin API as an ASGI app (mount it in a host's own server, or `serve` it)."""
    st = store if store is not None else OpsStore()
    cache: list[GoldenSet] = []

    def default_golden() -> GoldenSet:
        if not cache:
            cache.append(stdlib_golden_set(st.state_dir / "golden"))
        return cache[0]

    ctx = _Ctx(
        index,
        st,
        admin_token,
        max_body,
        golden or default_golden,
        dict(gate_options or {}),
        dict(night_options or {}),
    )
    routes = [
        Route("/health", _endpoint(health), methods=["GET"]),
        Route("/monitoring/dashboard", _endpoint(dashboard), methods=["GET"]),
        Route("/canary/status", _endpoint(canary_status), methods=["GET"]),
        Route("/canary/progress", _endpoint(canary_progress, admin=True), methods=["POST"]),
        Route("/canary/start", _endpoint(canary_start, admin=True), methods=["POST"]),
        Route("/canary/killswitch", _endpoint(killswitch, admin=True), methods=["POST"]),
        Route("/validation/quality-gates", _endpoint(gates_get), methods=["GET"]),
        Route("/validation/quality-gates", _endpoint(gates_post, admin=True), methods=["POST"]),
        Route("/validation/status", _endpoint(validation_status), methods=["GET"]),
        Route("/validation/nightly", _endpoint(nightly_post, admin=True), methods=["POST"]),
        Route("/validation/signoff-report", _endpoint(signoff_report), methods=["GET"]),
        Route("/compat/check", _endpoint(compat_check), methods=["GET"]),
        Route("/compat/bundles", _endpoint(compat_bundles_get), methods=["GET"]),
        Route("/search", _endpoint(search), methods=["POST"]),
        Route("/metrics", _endpoint(metrics), methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.ctx = ctx
    return app


def serve(
    *,
    index: str | None,
    host: str,
    port: int,
    state_dir: str | None,
    config: str | None,
    golden_files: int = 40,
    golden_queries: int = 30,
) -> int:
    """`lens serve`: run the admin API under uvicorn until interrupted."""
    import uvicorn

    if state_dir is not None:
        from .._state import set_state_dir

        set_state_dir(state_dir)  # the deployment's state directory: the canary's state lives there too
    idx = Index.open(index) if index else None
    store = OpsStore(state_dir)
    token = admin_token_from(config=config)
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(
            f"lens serve: warning: binding {host}, not loopback; keep it behind a firewall or proxy",
            file=sys.stderr,
        )
    if not token:
        print(
            "lens serve: no admin token configured (LENS_ADMIN_TOKEN or admin_token in the config file): "
            "mutating endpoints will refuse",
            file=sys.stderr,
        )

    def golden() -> GoldenSet:
        return stdlib_golden_set(store.state_dir / "golden", files=golden_files, per_kind=golden_queries)

    cache: list[GoldenSet] = []

    def cached() -> GoldenSet:
        if not cache:
            cache.append(golden())
        return cache[0]

    app = create_app(index=idx, store=store, admin_token=token, golden=cached)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return 0
