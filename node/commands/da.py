"""`loraledger da ...`: run the DA server and put/get payloads by hand (thin wrappers over attribution.da)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from typing import Annotated

import typer

from node.errors import UsageError

_MAX_PAYLOAD_BYTES = 16 * 1024 * 1024  # attribution.da.codec.MAX_PAYLOAD_BYTES (not imported: --help stays light)

# attribution.da (eth-account, ckzg) is imported inside the commands: `--help` and argument errors stay fast.
# These equal attribution.da.client.DEFAULT_URL / attribution.da.server.DEFAULT_PORT (a unit test checks).
DEFAULT_URL = "http://127.0.0.1:3100"
DEFAULT_PORT = 3100

# the client options of `da put` and `da get`
UrlOpt = Annotated[str, typer.Option("--url", help="DA server or eigenda-proxy URL.")]
TimeoutOpt = Annotated[float, typer.Option("--timeout", help="Seconds per HTTP attempt.")]
RetriesOpt = Annotated[int, typer.Option("--retries", help="Retries on 5xx/connection errors (backoff).")]


DA_API_KEY_ENV = "LORALEDGER_BATCHER__DA_API_KEY"  # batcher.da_api_key: what a keyed DA server wants for puts


def da_api_key() -> str | None:
    """The DA write key for puts from this machine (env only: a key never goes on the command line)."""
    import os

    return os.environ.get(DA_API_KEY_ENV) or None


def _quiet_http_logs() -> None:
    # httpx logs every request URL at INFO; a commitment in a URL is kilobytes of hex
    logging.getLogger("httpx").setLevel(logging.WARNING)


def _check_url(url: str) -> None:
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"--url {url!r} is not an http(s) URL; pass e.g. {DEFAULT_URL}")


def _check_port_free(host: str, port: int) -> None:
    import socket

    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            raise UsageError(f"cannot listen on {host}:{port} ({e.strerror}): stop what uses it or pass another "
                             "--port") from e


def _check_client_options(timeout: float, retries: int, url: str | None = None) -> None:
    if url is not None:
        _check_url(url)
    if timeout <= 0:
        raise UsageError(f"--timeout must be > 0 seconds, got {timeout}")
    if retries < 0:
        raise UsageError(f"--retries must be >= 0, got {retries}")


app = typer.Typer(help="Data-availability layer: the Alt-DA server and put/get for operators.", no_args_is_help=True)


@app.command("serve")
def serve_command(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Where blobs, certificates and the dev key live.")],
    port: Annotated[int, typer.Option("--port", help="TCP port to listen on.")] = DEFAULT_PORT,
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    operator_keystore: Annotated[
        Path | None,
        typer.Option(
            "--operator-keystore",
            help="eth-account keyfile; password in $LORALEDGER_DA__OPERATOR_PASSWORD. Required unless --dev.",
        ),
    ] = None,
    dev: Annotated[bool, typer.Option("--dev", help="Local devnet: without a keystore, create/reuse a dev "
                                      "operator key in the data dir.")] = False,
    body_timeout: Annotated[float, typer.Option("--body-timeout", help="Seconds a put's whole body may take "
                                                "to arrive.")] = 60.0,
    max_inflight_gets: Annotated[int, typer.Option("--max-inflight-gets", help="Concurrent GETs before 503.")] = 64,
    header_timeout: Annotated[float, typer.Option("--header-timeout", help="Seconds a request's headers may take "
                                                  "to arrive.")] = 10.0,
    send_timeout: Annotated[float, typer.Option("--send-timeout", help="Seconds a reader may read nothing before "
                                                "its GET is cut off.")] = 30.0,
    max_gets_per_client: Annotated[int, typer.Option("--max-gets-per-client", help="Concurrent GETs from one "
                                                     "address before 503.")] = 8,
    max_uploads_per_client: Annotated[int, typer.Option("--max-uploads-per-client", help="Put bodies received at "
                                                        "once from one address before 503.")] = 8,
    quota_bytes: Annotated[int | None, typer.Option("--quota-bytes", help="Disk quota of the blob store; a put "
                                                    "past it gets 507 (default: no quota).")] = None,
    api_key_hash: Annotated[str | None, typer.Option("--api-key-hash", help="sha256 hex of the API key puts must "
                                                     "send (`loraledger node hash-key`); or the key itself in "
                                                     "$LORALEDGER_DA__API_KEY.")] = None,
    max_payload_bytes: Annotated[int, typer.Option("--max-payload-bytes", help="Largest payload accepted (at most "
                                                   "16 MiB); above it 413.")] = _MAX_PAYLOAD_BYTES,
    enable_faults: Annotated[bool, typer.Option("--enable-faults", help="Enable /admin/faults (tests only).")] = False,
    kzg: Annotated[bool, typer.Option("--kzg/--no-kzg", help="Compute KZG commitments (off: benchmarks only).")] = True,
    kzg_workers: Annotated[
        int | None, typer.Option("--kzg-workers", help="KZG worker processes (default min(2, CPUs)).")
    ] = None,
) -> None:
    """Run the DA server (OP Alt-DA API: POST /put, GET /get/0x<commitment>, GET /health)."""
    if not 0 < port < 65536:
        raise UsageError(f"--port must be 1..65535, got {port}")
    if kzg_workers is not None and kzg_workers < 1:
        raise UsageError(f"--kzg-workers must be >= 1, got {kzg_workers}")
    if max_inflight_gets < 1 or not 0 < max_payload_bytes <= _MAX_PAYLOAD_BYTES:
        raise UsageError(f"--max-inflight-gets must be >= 1 and --max-payload-bytes in 1..{_MAX_PAYLOAD_BYTES}")
    if min(body_timeout, header_timeout, send_timeout) <= 0:
        raise UsageError("--body-timeout, --header-timeout and --send-timeout must be > 0 seconds")
    if min(max_gets_per_client, max_uploads_per_client) < 1 or (quota_bytes is not None and quota_bytes < 1):
        raise UsageError("--max-gets-per-client, --max-uploads-per-client and --quota-bytes must be >= 1")
    if operator_keystore is None and not dev:
        raise UsageError("no --operator-keystore: outside a local devnet the DA server needs a real operator key "
                         "(password in $LORALEDGER_DA__OPERATOR_PASSWORD); pass --dev for a local devnet")
    if operator_keystore is not None and not operator_keystore.is_file():
        raise UsageError(f"--operator-keystore {operator_keystore} is not a file; pass an eth-account keyfile")
    _check_port_free(host, port)  # before anything is written to the data dir (the dev key)
    from attribution.da.errors import DAError
    from attribution.da.server import DAServerConfig, serve
    from attribution.da.server import api_key_hash as key_hash

    try:
        serve(
            DAServerConfig(
                data_dir=data_dir, host=host, port=port, operator_keystore=operator_keystore,
                enable_faults=enable_faults, kzg=kzg, kzg_workers=kzg_workers, dev=dev,
                body_timeout_s=body_timeout, max_inflight_gets=max_inflight_gets,
                max_payload_bytes=max_payload_bytes, header_timeout_s=header_timeout, send_timeout_s=send_timeout,
                max_gets_per_client=max_gets_per_client, max_uploads_per_client=max_uploads_per_client,
                quota_bytes=quota_bytes, api_key_hash=key_hash(api_key_hash),
            )
        )
    except DAError as e:
        raise UsageError(str(e)) from e


@app.command("put")
def put_command(
    file: Annotated[Path, typer.Argument(help="Payload file ('-' for stdin).")],
    url: UrlOpt = DEFAULT_URL,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 5,
) -> None:
    """Store FILE on the DA layer and print its commitment as 0x hex (a keyed DA server: the key in
    $LORALEDGER_BATCHER__DA_API_KEY)."""
    _quiet_http_logs()
    _check_client_options(timeout, retries, url)
    try:
        payload = sys.stdin.buffer.read() if str(file) == "-" else file.read_bytes()
    except OSError as e:
        raise UsageError(f"cannot read {file}: {e}") from e
    from attribution.da.client import DAClient
    from attribution.da.errors import DAError

    try:
        with DAClient(url, timeout=timeout, max_retries=retries, api_key=da_api_key()) as client:
            commitment = client.put(payload)
    except DAError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    typer.echo("0x" + commitment.hex())


@app.command("get")
def get_command(
    commitment: Annotated[str, typer.Argument(help="Commitment as 0x hex (what `da put` printed).")],
    url: UrlOpt = DEFAULT_URL,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the payload here (default: stdout).")
    ] = None,
    expected_operator: Annotated[
        str | None, typer.Option("--operator", help="Reject certificates not signed by this DA operator address.")
    ] = None,
    verify_kzg: Annotated[bool, typer.Option("--verify-kzg", help="Also recompute the KZG commitments.")] = False,
    timeout: TimeoutOpt = 120.0,
    retries: RetriesOpt = 5,
) -> None:
    """Fetch the payload of COMMITMENT (verified against our certificate) to stdout or --output."""
    _quiet_http_logs()
    _check_client_options(timeout, retries, url)
    body = commitment[2:] if commitment[:2] in ("0x", "0X") else commitment
    try:
        bytes.fromhex(body)
    except ValueError as e:
        raise UsageError("commitment is not hex; pass the 0x-prefixed hex that `da put` printed") from e
    from attribution.da.client import DAClient
    from attribution.da.codec import parse_commitment_hex
    from attribution.da.errors import DAError

    try:
        raw = parse_commitment_hex(commitment)
    except DAError as e:
        raise UsageError(str(e)) from e
    if raw[0] not in (0x00, 0x01) or len(raw) < 3:  # OP Alt-DA: 0x00 keccak or 0x01 generic commitment
        raise UsageError(f"{commitment[:20]!r} is not an Alt-DA commitment (it starts with 0x00 or 0x01); pass "
                         "the 0x-prefixed hex that `da put` printed")
    if expected_operator is not None:
        body = expected_operator.removeprefix("0x").removeprefix("0X")
        if len(body) != 40 or any(c not in "0123456789abcdefABCDEF" for c in body):
            raise UsageError(f"--operator {expected_operator!r} is not an address; pass 0x + 40 hex digits")
    if output is not None and not output.parent.is_dir():
        raise UsageError(f"--output {output}: directory {output.parent} does not exist; create it first")
    if output is not None and output.is_dir():
        raise UsageError(f"--output {output} is a directory; pass a file path")
    try:
        with DAClient(
            url, timeout=timeout, max_retries=retries, expected_operator=expected_operator, verify_kzg=verify_kzg
        ) as client:
            payload = client.get(raw)
    except DAError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(1) from e
    if output is None:
        sys.stdout.buffer.write(payload)
        sys.stdout.buffer.flush()
    else:
        try:
            output.write_bytes(payload)
        except OSError as e:
            raise UsageError(f"cannot write --output {output}: {e.strerror}") from e
        typer.echo(f"wrote {len(payload)} bytes to {output}", err=True)
