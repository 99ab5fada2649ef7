"""`deploy/gateway/gateway <command>`: render, check, start, stop and inspect the gateway."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ksbb_gateway.config import load_config
from ksbb_gateway.local import DEFAULT_STATE, GatewayError, LocalGateway, ensure_nginx, ensure_vendor
from ksbb_gateway.render import ROOT, rendered_outputs, stale_outputs, write_outputs
from ksbb_gateway.routes import route_table
from ksbb_gateway.sources import service_documents


def _relative(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def main(argv: list[str] | None = None) -> int:
    """Run one command."""
    parser = argparse.ArgumentParser(prog="deploy/gateway/gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="install nginx-light (Debian) and Swagger UI (npm) when missing")
    render = commands.add_parser("render", help="render the compose and k8s files and the merged OpenAPI document")
    render.add_argument("--check", action="store_true", help="only report renderings that are out of date")
    commands.add_parser("routes", help="print the route table generated from the services' OpenAPI documents")
    for name, text in (("start", "start the local gateway in the background"),
                       ("run", "run the local gateway in the foreground"),
                       ("stop", "stop the local gateway"), ("status", "is the local gateway running?")):
        command = commands.add_parser(name, help=text)
        command.add_argument("--state", type=Path, default=DEFAULT_STATE, help="state folder (default .ksbb/gateway)")
        command.add_argument("--listen", help="host:port to listen on instead of the local target's")
    args = parser.parse_args(argv)
    config = load_config()
    try:
        if args.command == "install":
            print(f"nginx: {ensure_nginx()}\nSwagger UI: {_relative(ensure_vendor())}")
            return 0
        if args.command == "routes":
            for route in route_table(service_documents(config.services), config):
                print(f"{route.service:<10} {' '.join(route.methods):<18} {route.path}")
            return 0
        if args.command == "render":
            outputs = rendered_outputs(config, service_documents(config.services))
            if args.check:
                stale = stale_outputs(outputs)
                for path in stale:
                    print(f"out of date: {_relative(path)} (run deploy/gateway/gateway render)")
                return 1 if stale else 0
            for path in write_outputs(outputs):
                print(f"rendered {_relative(path)}")
            return 0
        gateway = LocalGateway(args.state, config=config,
                               target_changes={"listen": args.listen} if args.listen else None)
        if args.command == "stop":
            gateway.stop()
            print("gateway stopped")
            return 0
        if args.command == "status":
            pid = gateway.pid()
            print(f"gateway: running (pid {pid}) at {gateway.url}" if pid else "gateway: not running")
            return 0 if pid else 1
        if gateway.pid() is not None:
            print(f"gateway already running at {gateway.url}; `deploy/gateway/gateway stop` first", file=sys.stderr)
            return 1
        gateway.prepare(service_documents(config.services))
        if args.command == "start":
            gateway.start(detached=True)
            print(f"gateway running at {gateway.url} (logs: {_relative(gateway.state / 'logs')})")
            return 0
        process = gateway.start()
        print(f"gateway running at {gateway.url}; Ctrl-C stops it", flush=True)
        try:
            return process.wait()
        except KeyboardInterrupt:
            gateway.stop()
            return 0
    except GatewayError as exc:
        print(f"gateway: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
