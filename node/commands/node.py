"""`loraledger node ...`: run the node (OpenAI-compatible API + engine + record store + batcher), hash API keys."""

from __future__ import annotations

import json
import logging
import pathlib
from typing import Annotated, Any

import typer

from node.errors import UsageError

app = typer.Typer(help="The inference node: OpenAI-compatible serving with an attribution record per answer, and its "
                  "batcher.", no_args_is_help=True)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname, "logger": record.name,
                               "msg": record.getMessage()}
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out)


def _json_logs() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]


def examples(base_url: str, model: str, adapter: str | None) -> str:
    """The curl line and OpenAI-client snippet printed when the node is up."""
    target = adapter or model
    return (
        f"curl -s {base_url}/v1/completions -H 'Content-Type: application/json' "
        f"-d '{{\"model\": \"{target}\", \"prompt\": \"The json module\", \"max_tokens\": 24}}'\n\n"
        "python - <<'PY'\n"
        "from openai import OpenAI\n"
        f"client = OpenAI(base_url=\"{base_url}/v1\", api_key=\"unused\")\n"
        f"r = client.chat.completions.create(model=\"{target}\", "
        "messages=[{\"role\": \"user\", \"content\": \"What does json.dumps do?\"}], max_tokens=24)\n"
        "print(r.choices[0].message.content)\n"
        "print(r.model_extra[\"attribution\"][\"status_url\"])\n"
        "PY\n")


@app.command("run")
def run(
    config: Annotated[pathlib.Path | None, typer.Option("--config", help="Settings file (default ./loraledger.toml; "
                                                         "LORALEDGER_* environment variables override it).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="Listen address (node.host).")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Listen port (node.port).")] = None,
) -> None:
    """Serve, and post the records with the node's own batcher (unless batcher.enabled = false), until
    SIGTERM/Ctrl-C: stop admitting, finish in-flight requests, flush the record store, stop the batcher."""
    from pydantic import ValidationError

    from node.settings import load_settings

    if config is not None and not config.is_file():
        raise UsageError(f"--config {config}: no such file")
    try:
        settings = load_settings(config)
        if host is not None or port is not None:
            node = settings.node.model_copy(update={k: v for k, v in (("host", host), ("port", port)) if v is not None})
            settings = settings.model_copy(update={"node": node})
    except ValidationError as e:
        first = e.errors()[0]
        raise UsageError(f"settings: {'.'.join(str(x) for x in first['loc'])}: {first['msg']}") from e
    if settings.node.json_logs:
        _json_logs()
    import uvicorn

    from attribution.http_server import HttpLimits, serve_config
    from node.app import create_app
    from node.services import build_services

    services = build_services(settings)
    app_ = create_app(settings, services=services)
    base_url = f"http://{settings.node.host}:{settings.node.port}"
    adapters = services.catalogue.entries()
    if services.batcher is not None:
        from attribution.chain.redact import redact_url

        batcher_line = (f"batcher: in this process, to DA {redact_url(settings.batcher.da_url)} and ledger "
                        f"{services.batcher.ledger.address}")
    elif services.store is not None:
        batcher_line = ("batcher: off here (batcher.enabled = false); run `loraledger batcher run --db "
                        f"{settings.store.path}` beside this node")
    else:
        batcher_line = "batcher: none (attribution off)"
    typer.echo(f"loraledger node: serving {services.model_name} + {len(adapters)} adapters on {base_url}\n"
               f"{batcher_line}\n"
               f"try:\n{examples(base_url, services.model_name, adapters[0].name if adapters else None)}", err=True)
    if not services.engine.ready:  # vLLM starts in the background (tens of seconds); its progress is logged
        typer.echo(f"loraledger node: the {services.engine.backend} engine is starting; {base_url}/readyz answers 200 "
                   "once it is up", err=True)
    class _Server(uvicorn.Server):
        def handle_exit(self, sig: int, frame: Any) -> None:
            super().handle_exit(sig, frame)
            # the graceful shutdown is the whole answer to SIGTERM/Ctrl-C: exit 0 instead of re-raising the signal
            self._captured_signals.clear()

    n = settings.node
    # header/body/send timeouts and a per-address connection cap; X-Forwarded-For only from node.trusted_proxies
    # (uvicorn's default trusts it from 127.0.0.1, which let any local client pick its rate-limit address)
    limits = HttpLimits(header_timeout_s=n.header_timeout_s, body_timeout_s=n.body_timeout_s,
                        send_timeout_s=n.send_timeout_s, max_connections_per_client=n.max_connections_per_client,
                        trusted_proxies=tuple(n.trusted_proxies))
    server = _Server(serve_config(app_, n.host, n.port, limits, log_config=None, access_log=False,
                                  timeout_graceful_shutdown=int(n.shutdown_deadline_s) or None))
    server.run()
    typer.echo("loraledger node: stopped (in-flight answers finished and recorded, record store flushed, batcher "
               "stopped)", err=True)


@app.command("store-path")
def store_path(
    config: Annotated[pathlib.Path | None, typer.Option("--config", help="Settings file (as for `node run`).")] = None,
) -> None:
    """Print the record store path the node uses with these settings (for scripts: the batcher's --db)."""
    from node.settings import load_settings

    if config is not None and not config.is_file():
        raise UsageError(f"--config {config}: no such file")
    typer.echo(str(load_settings(config).store.path))


@app.command("url")
def url(
    config: Annotated[pathlib.Path | None, typer.Option("--config", help="Settings file (as for `node run`).")] = None,
    host: Annotated[str | None, typer.Option("--host", help="As for `node run`.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="As for `node run`.")] = None,
) -> None:
    """Print the base URL the node serves on with these settings (for scripts)."""
    from node.settings import load_settings

    if config is not None and not config.is_file():
        raise UsageError(f"--config {config}: no such file")
    node = load_settings(config).node
    typer.echo(f"http://{host or node.host}:{port or node.port}")


@app.command("hash-key")
def hash_key_cmd(
    key: Annotated[str | None, typer.Argument(help="The key (avoid: argv is visible to every local user; without "
                                              "it the key is read from --key-file, a pipe, or a hidden prompt).",
                                              show_default=False)] = None,
    key_file: Annotated[pathlib.Path | None, typer.Option("--key-file", help="Read the key from this file "
                                                          "(first line).")] = None,
) -> None:
    """Print the sha256 hex to put in node.api_key_hashes / node.admin_key_hash (the node never stores keys)."""
    import sys

    from node.api.auth import hash_key

    if key is not None:
        typer.echo("warning: a key on the command line is visible to every local user in `ps` and your shell "
                   "history; pipe it in, use --key-file, or omit it to be prompted", err=True)
    elif key_file is not None:
        try:
            key = key_file.read_text(encoding="utf-8").splitlines()[0] if key_file.stat().st_size else ""
        except (OSError, UnicodeDecodeError) as e:
            raise UsageError(f"--key-file {key_file}: {e}") from e
    elif not sys.stdin.isatty():
        key = sys.stdin.readline().rstrip("\r\n")
    else:
        key = typer.prompt("key", hide_input=True)
    if not key:
        raise UsageError("the key is empty")
    typer.echo(hash_key(key))
