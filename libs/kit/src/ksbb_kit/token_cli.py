"""`ksbb token`: an access token from the identity provider, or (explicitly) from the development issuer.

* `ksbb token`            client credentials of the CLI client (`ksbb-cli`, whose service account is an admin)
* `ksbb token --device`   a person signs in in a browser (device login, RFC 8628) and gets their own token
* `ksbb token --dev --role facilitator --org org_…`   a development token; services accept it only with
  `KSBB_DEV_ISSUER_ENABLED=true` (tests and `make run`), never in production
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from ksbb_kit.auth import DevIssuer, Role
from ksbb_kit.oidc import OidcClient, OidcError, TokenSet

DEFAULT_ISSUER_DIR = Path(os.environ.get("KSBB_DEV_ISSUER_DIR", ".ksbb/dev-issuer"))
DEFAULT_CLIENT_ID = "ksbb-cli"


def _infra_env() -> dict[str, str]:
    """Values from deploy/local/infra's env file, for shells that did not source it."""
    path = Path(os.environ.get("KSBB_INFRA_DIR", ".ksbb/infra")) / "infra.env"
    values: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.startswith("#"):
                values[key.strip()] = value.strip()
    return values


def _setting(name: str) -> str | None:
    return os.environ.get(name) or _infra_env().get(name)


def add_token_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `ksbb token`."""
    parser.description = __doc__
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.add_argument("--issuer", help="OIDC issuer URL (default: $KSBB_OIDC_ISSUER or the infra env file)")
    parser.add_argument("--client-id", default=os.environ.get("KSBB_OIDC_CLI_CLIENT_ID", DEFAULT_CLIENT_ID))
    parser.add_argument("--client-secret", help="default: $KSBB_OIDC_CLI_SECRET or the infra env file")
    parser.add_argument("--device", action="store_true", help="sign a person in through a browser (device login)")
    parser.add_argument("--json", action="store_true", help="print the whole token response (refresh token too)")
    dev = parser.add_argument_group("development issuer (only with --dev)")
    dev.add_argument("--dev", action="store_true", help="sign a development token locally instead")
    dev.add_argument("--role", choices=[r.value for r in Role])
    dev.add_argument("--org", help="organisation id (facilitator)")
    dev.add_argument("--recipient", help="recipient id (recipient account)")
    dev.add_argument("--sub", help="subject (defaults from role and ids)")
    dev.add_argument("--name")
    dev.add_argument("--ttl", type=int, default=12 * 3600)
    dev.add_argument("--dir", default=str(DEFAULT_ISSUER_DIR))


def run_token_command(args: argparse.Namespace) -> int:
    """Print an access token (stdout) with hints on stderr; exit 2 on wrong usage, 1 when the provider refuses."""
    dev_only = [flag for flag, value in (("--role", args.role), ("--org", args.org), ("--recipient", args.recipient),
                                         ("--sub", args.sub), ("--name", args.name)) if value]
    if args.dev:
        if not args.role:
            print("ksbb token --dev needs --role", file=sys.stderr)
            return 2
        issuer = DevIssuer(Path(args.dir))
        print(issuer.token(Role(args.role), subject=args.sub, org_id=args.org, recipient_id=args.recipient,
                           name=args.name, ttl_seconds=args.ttl))
        print(f"# development token; services accept it only with KSBB_DEV_ISSUER_ENABLED=true "
              f"(JWKS: {issuer.jwks_path.resolve()})", file=sys.stderr)
        return 0
    if dev_only:
        print(f"{', '.join(dev_only)} only make sense with --dev (a development token). Real tokens carry the "
              "roles and attributes the identity provider holds for the account.", file=sys.stderr)
        return 2
    issuer_url = args.issuer or _setting("KSBB_OIDC_ISSUER")
    secret = args.client_secret or _setting("KSBB_OIDC_CLI_SECRET")
    if not issuer_url:
        print("no identity provider: set KSBB_OIDC_ISSUER (deploy/local/infra up writes it) or pass --issuer; "
              "for a development token use --dev --role …", file=sys.stderr)
        return 2
    try:
        tokens = asyncio.run(_fetch(issuer_url, args.client_id, secret, device=args.device))
    except OidcError as exc:
        print(f"the identity provider refused: {exc}", file=sys.stderr)
        return 1
    print(tokens.model_dump_json(exclude_none=True) if args.json else tokens.access_token)
    return 0


async def _fetch(issuer: str, client_id: str, secret: str | None, *, device: bool) -> TokenSet:
    async with OidcClient(issuer, client_id, secret) as client:
        if not device:
            return await client.client_credentials()
        login = await client.start_device_login()
        where = login.verification_uri_complete or login.verification_uri
        print(f"Buka {where} lalu masuk (kode: {login.user_code}).\n"
              f"Open {where} and sign in (code: {login.user_code}).", file=sys.stderr, flush=True)
        return await client.finish_device_login(login)


def main(argv: list[str] | None = None) -> int:
    """`python -m ksbb_kit.token_cli` (the same as `ksbb token`)."""
    parser = argparse.ArgumentParser(prog="ksbb token")
    add_token_arguments(parser)
    return run_token_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

