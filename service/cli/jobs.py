"""``python -m service jobs list --collection NAME``: ``GET /v1/collections/{name}/jobs`` of a running server.

Jobs are stored with the collections (the job store: every process records its jobs there), but a job that is
running belongs to the server running it, which merges its live ones with the stored ones; so this command asks
that server over HTTP (``--url``, default ``http://JEV4_HOST:JEV4_PORT``; the first of ``JEV4_API_KEYS`` as the
Bearer key).
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from service.cli.output import when
from service.cli.session import fail

if TYPE_CHECKING:
    from service.settings import Settings

__all__ = ["add_jobs_command", "jobs_command"]


def add_jobs_command(sub: Any, finish: Callable[..., None]) -> None:
    jobs = sub.add_parser(
        "jobs",
        help="indexing jobs of a collection, asked of a running server (jobs are stored with the collections)",
        description="Lists a collection's indexing jobs, newest first. Jobs are stored with the collections "
        "(every process records its jobs there); this command asks a running server (--url, default "
        "http://HOST:PORT from the settings), which merges its live jobs with the stored ones.",
    )
    jobs_sub = jobs.add_subparsers(dest="action", required=True)
    p = jobs_sub.add_parser("list", help="the collection's jobs, newest first")
    p.add_argument("--status", choices=["queued", "running", "succeeded", "failed"])
    p.add_argument("--url", help="the server (default http://HOST:PORT from the settings)")
    finish(p, collection=True)


def jobs_command(args: argparse.Namespace, settings: Settings) -> int:
    import httpx

    from service.serving import ServingOptions

    url = (args.url or settings.local_url()).rstrip("/")
    key = ServingOptions.from_settings(settings).client_key  # the server's own first key
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    params = {"status": args.status} if args.status else {}
    try:
        response = httpx.get(f"{url}/v1/collections/{args.collection}/jobs", params=params, headers=headers)
    except httpx.TransportError as exc:
        return fail(f"no server answers at {url} ({exc}); start one with `python -m service serve` or pass --url")
    if response.status_code != 200:
        return fail(response.json().get("error", {}).get("message", response.text), 1)
    for job in response.json()["data"]:
        total = "?" if job["pages_total"] is None else job["pages_total"]
        text = f"{job['id']}  {job['status']}  {job['document_id']}  {job['pages_done']}/{total} pages  "
        text += f"created {when(job['created_at'])}"
        if job.get("error"):
            text += f"\n    {job['error']['code']}: {job['error']['message']}"
        print(json.dumps(job, ensure_ascii=False) if args.json else text)
    return 0
