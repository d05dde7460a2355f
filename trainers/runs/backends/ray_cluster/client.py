"""The Ray job API's address, a client whose every request is bounded, and whether the cluster answers.

``ray`` is imported inside the functions that need it, never at import time (see
:mod:`trainers.runs.backends.ray_cluster`).
"""

from __future__ import annotations

import os
import threading
from typing import Any

from trainers.errors import WorkbenchError

CLUSTER_ENV = "WORKBENCH_CLUSTER"  # default for --cluster
INSTALL_HINT = 'pip install -e ".[cluster]"'

CONNECT_TIMEOUT_S = 3.0  # TCP connect to the job API
# One job API answer (status, stop, logs, submit). Generous: a head on a busy small machine can answer slowly, and a
# timed-out submit must then be checked by its id, not retried.
READ_TIMEOUT_S = 20.0

_ADDRESS_VARS = ("RAY_API_SERVER_ADDRESS", "RAY_ADDRESS")


class ClusterError(WorkbenchError):
    """The Ray cluster cannot be used (not reachable, ray not installed, the job API refused). The CLI exits 2."""


# ---- address and client --------------------------------------------------------------------------------------------
def normalize_address(address: str) -> str:
    """``HOST:PORT`` or ``http(s)://HOST:PORT[/]`` -> ``http(s)://HOST:PORT``.

    Raises:
        ClusterError: For another scheme (``ray://`` is Ray Client, not the job API) or an empty address.
    """
    text = str(address).strip().rstrip("/")
    if not text:
        raise ClusterError("--cluster: empty address; pass the Ray job API, e.g. http://127.0.0.1:8265")
    if "://" not in text:
        text = "http://" + text
    scheme = text.split("://", 1)[0].lower()
    if scheme not in ("http", "https"):
        raise ClusterError(
            f"--cluster {address}: not a Ray job API address; pass http://HEAD:8265 (the dashboard port), "
            f"not a {scheme}:// address"
        )
    return text


def resolve_address(cli_value: str | None = None) -> str | None:
    """The cluster for a command: ``--cluster`` > ``$WORKBENCH_CLUSTER`` > None (run locally)."""
    raw = cli_value if cli_value not in (None, "") else os.environ.get(CLUSTER_ENV)
    return normalize_address(raw) if raw else None


def _unreachable(address: str, why: str = "") -> ClusterError:
    reason = f" ({why})" if why else ""
    return ClusterError(
        f"cannot reach the Ray job API at {address}{reason}; start a head with `ray start --head` "
        f"or pass the right --cluster / ${CLUSTER_ENV}"
    )


def _import_ray_client():
    try:
        from ray.job_submission import JobSubmissionClient
    except ImportError:
        raise ClusterError(f"--cluster needs Ray, which is not installed; install it with {INSTALL_HINT}") from None
    return JobSubmissionClient


_env_lock = threading.Lock()
_clients: dict[str, Any] = {}


def _make_client(address: str, connect_timeout: float, read_timeout: float):
    base = _import_ray_client()
    import requests

    class _BoundedClient(base):
        # Ray forwards extra keyword arguments of _do_request to requests.request(), which waits forever by default.
        def _do_request(self, method, endpoint, **kwargs):
            kwargs.setdefault("timeout", (connect_timeout, read_timeout))
            return super()._do_request(method, endpoint, **kwargs)

    with _env_lock:
        # JobSubmissionClient reads these before its address argument; inside a Ray job RAY_ADDRESS is the GCS.
        saved = {k: os.environ.pop(k) for k in _ADDRESS_VARS if k in os.environ}
        try:
            return _BoundedClient(address)
        except requests.exceptions.ConnectTimeout:
            raise _unreachable(address, f"no connection within {connect_timeout:g} s") from None
        except requests.exceptions.Timeout:
            raise _unreachable(address, f"connected, but no answer within {read_timeout:g} s") from None
        except (requests.exceptions.RequestException, ConnectionError) as e:
            raise _unreachable(address, _connection_reason(e)) from None
        except RuntimeError as e:  # "Version check returned 404": something else listens there
            raise ClusterError(
                f"{address} answers but is not a Ray job API ({short_error(e)}); pass the Ray dashboard address "
                f"(default port 8265) with --cluster / ${CLUSTER_ENV}"
            ) from None
        finally:
            os.environ.update(saved)


def client(address: str):
    """A ``JobSubmissionClient`` for ``address`` whose every request is bounded by timeouts (cached per address).

    Each request waits at most :data:`CONNECT_TIMEOUT_S` to connect and :data:`READ_TIMEOUT_S` for the answer.
    Constructing it already asks the job API for its version (twice), so a new client is also a reachability check.

    Raises:
        ClusterError: One line naming the address, if ray is missing or the job API does not answer.
    """
    address = normalize_address(address)
    if address not in _clients:
        _clients[address] = _make_client(address, CONNECT_TIMEOUT_S, READ_TIMEOUT_S)
    return _clients[address]


def _connection_reason(e: BaseException) -> str:
    """Why a connection failed, in a few words (Ray's own ConnectionError only repeats the address)."""
    text = " ".join(f"{e} {e.__context__ or ''}".split()).lower()
    for needle, reason in (
        ("refused", "connection refused"),
        ("name or service not known", "unknown host"),
        ("failed to resolve", "unknown host"),
        ("nodename nor servname", "unknown host"),
        ("temporary failure in name resolution", "unknown host"),
        ("no route", "no route to host"),
        ("network is unreachable", "network unreachable"),
        ("timed out", "connection timed out"),
    ):
        if needle in text:
            return reason
    return "connection failed"


def short_error(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split()) or type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def check_reachable(address: str, *, timeout: float = CONNECT_TIMEOUT_S, read_timeout: float = 10.0) -> str:
    """Fail in a few seconds, with one line, unless the Ray job API at ``address`` answers; return Ray's version.

    Never cached: each call asks the cluster again (two ``GET /api/version``, each bounded by ``timeout`` to
    connect and ``read_timeout`` to answer). Nothing listening, an unknown host, or no route fail within
    ``timeout``; a port that accepts and never answers within ``read_timeout``.

    Raises:
        ClusterError: ``cannot reach the Ray job API at ADDRESS (...); start a head with `ray start --head` or pass
            the right --cluster / $WORKBENCH_CLUSTER``, or the install hint if ray is missing.
    """
    address = normalize_address(address)
    c = _make_client(address, timeout, read_timeout)
    return str(getattr(c, "_server_ray_version", "") or "")


def call_job_api(address: str, what: str, fn):
    """Run one job API call, turning transport failures into the one-line unreachable error."""
    import requests

    try:
        return fn(client(address))
    except requests.exceptions.ConnectTimeout:
        raise _unreachable(address, f"{what}: no connection within {CONNECT_TIMEOUT_S:g} s") from None
    except requests.exceptions.Timeout:
        raise _unreachable(address, f"{what}: connected, but no answer within {READ_TIMEOUT_S:g} s") from None
    except (requests.exceptions.RequestException, ConnectionError) as e:
        _clients.clear()  # the next call reconnects (and re-checks the version)
        raise _unreachable(address, f"{what}: {_connection_reason(e)}") from None


def is_not_found(e: BaseException) -> bool:
    return isinstance(e, RuntimeError) and "status code 404" in str(e)
