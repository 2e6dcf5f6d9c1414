"""``sectigo-chain render``: print or write standalone PowerShell scripts.

``TEMPLATE-OR-PLAN`` is a template name (parameters from ``--param KEY=VALUE`` and
``--params-json FILE``) or the path of a plan file ``{"actions": [{"template": NAME,
"params": {...}}, ...]}`` (other keys are ignored). Secrets are never written unless
``--embed-secrets`` is given, and then only into a new file created with owner-only
permissions; without it the script asks for them on the server.
"""

from __future__ import annotations

import argparse
import os

TYPE_CHECKING = False  # typing is not imported at --help time
if TYPE_CHECKING:
    from typing import Any, NoReturn

_EPILOG = (
    "Templates: observe, import_certificate, remove_certificate, disallow_certificate, "
    "import_pfx, move_certificate, set_binding, remove_binding, set_root_auto_update, restart, "
    "verify_chain (parameters: docs/templates.md). Without --embed-secrets the script asks for "
    "the PFX path and password on the server."
)


def register(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    """Add the ``render`` subcommand."""
    parser = subparsers.add_parser(
        "render",
        parents=parents,
        help="print a standalone PowerShell script for a template or a plan",
        description="Render a template (or every action of a plan file) as a self-contained "
        ".ps1 an operator can read and run by hand on the server.",
        epilog=_EPILOG,
    )
    parser.add_argument("target", metavar="TEMPLATE-OR-PLAN", help="template name or plan file")
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a template parameter (repeat a key for a list); not for secrets",
    )
    parser.add_argument("--params-json", metavar="FILE", help="parameters as a JSON object")
    parser.add_argument("--pfx", metavar="FILE", help="import_pfx: the PFX file to embed")
    parser.add_argument(
        "--password-env", metavar="VAR", help="import_pfx: read the PFX password from VAR"
    )
    parser.add_argument(
        "--embed-secrets",
        action="store_true",
        help="put secrets into the script (needs --out; the file is created mode 0600)",
    )
    parser.add_argument("--out", metavar="FILE", help="write the script here instead of stdout")
    parser.add_argument(
        "--force", action="store_true", help="with --embed-secrets: replace an existing --out file"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Handle ``sectigo-chain render``; returns the exit code."""
    import json
    import sys

    from sectigo_chain.templates.render import TEMPLATE_NAMES
    from sectigo_chain.templates.standalone import to_standalone, to_standalone_plan

    if args.embed_secrets and not args.out:
        _usage("--embed-secrets writes secrets, so it needs --out FILE (created mode 0600)")
    if not args.embed_secrets and (args.pfx or args.password_env):
        _usage(
            "--pfx and --password-env only matter with --embed-secrets; without it the "
            "script asks for the PFX and its password on the server"
        )
    if args.target in TEMPLATE_NAMES:
        scripts = [_render_template(args)]
        text = to_standalone(scripts[0], embed_secrets=args.embed_secrets)
    else:
        if args.param or args.params_json or args.pfx or args.password_env:
            _usage("--param, --params-json, --pfx and --password-env go with a template name")
        scripts = _render_plan(args.target, args.embed_secrets)
        text = to_standalone_plan(scripts, embed_secrets=args.embed_secrets)
    secrets = args.embed_secrets and any(script.secret_fields for script in scripts)
    if args.out:
        _write_script(args.out, text, secret=secrets, force=args.force)
    if args.json:
        document = {
            "out": args.out,
            "secrets_embedded": secrets,
            "scripts": [{"template": s.name, "params": s.masked_params()} for s in scripts],
            "script": None if args.out else text,
        }
        sys.stdout.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
    elif args.out:
        if not args.quiet:
            sys.stderr.write(f"wrote {args.out} ({len(scripts)} template(s))\n")
    else:
        sys.stdout.write(text)
    return 0


def _usage(message: str) -> NoReturn:
    from sectigo_chain.errors import InputError

    raise InputError(message)


#: A plan file with more actions is refused (one host's fix is under 20 actions; 20,000 would
#: render hundreds of megabytes of PowerShell).
MAX_PLAN_ACTIONS = 200
#: A plan or parameters file larger than this is refused (a 16 MB PFX in base64 fits).
_MAX_JSON_BYTES = 32 * 1024 * 1024


def _read_json(path: str, what: str) -> Any:
    import json

    try:
        with open(path, "rb") as handle:
            data = handle.read(_MAX_JSON_BYTES + 1)
    except OSError as exc:
        _usage(f"cannot read {what} {path}: {exc.strerror or exc}")
    if len(data) > _MAX_JSON_BYTES:
        _usage(f"{what} {path} is larger than {_MAX_JSON_BYTES} bytes")
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError as exc:
        _usage(f"{what} {path} is not valid JSON: {exc}")
    except RecursionError:
        _usage(f"{what} {path} is nested too deeply to be a {what}")


def _params_from_args(args: argparse.Namespace) -> dict[str, Any]:
    import base64

    from sectigo_chain.templates.params import TEMPLATE_SPECS

    spec = TEMPLATE_SPECS[args.target]
    params: dict[str, Any] = {}
    if args.params_json:
        loaded = _read_json(args.params_json, "parameters file")
        if not isinstance(loaded, dict):
            _usage(f"{args.params_json} must hold a JSON object of parameters")
        params.update(loaded)
    fields = spec.model.model_fields
    for item in args.param:
        key, sep, value = item.partition("=")
        if not sep or not key:
            _usage(f"--param takes KEY=VALUE, not {item!r}")
        if key in spec.secret_fields:
            _usage(
                f"--param {key}=... would put a secret on the command line; use --pfx, "
                "--password-env or --params-json"
            )
        annotation = str(fields[key].annotation) if key in fields else ""
        if key in params and isinstance(params[key], list):
            params[key].append(value)
        elif annotation.startswith("tuple"):
            params[key] = [value]
        else:
            params[key] = value
    if args.pfx:
        try:
            with open(args.pfx, "rb") as handle:
                params["pfx_b64"] = base64.b64encode(handle.read()).decode("ascii")
        except OSError as exc:
            _usage(f"cannot read PFX {args.pfx}: {exc.strerror or exc}")
    if args.password_env:
        if args.password_env not in os.environ:
            _usage(f"environment variable {args.password_env} is not set")
        params["password"] = os.environ[args.password_env]
        from sectigo_chain.logs import register_secret

        register_secret(params["password"])
    return params


def _fill_secrets(name: str, params: dict[str, Any], embed: bool) -> dict[str, Any]:
    """Without --embed-secrets the script asks for secrets on the host, so none are needed
    here: stand-ins that pass validation fill the missing ones (they never reach the output)."""
    from sectigo_chain.templates.params import TEMPLATE_SPECS

    missing = [f for f in sorted(TEMPLATE_SPECS[name].secret_fields) if f not in params]
    if embed and missing:
        _usage(
            f"--embed-secrets needs {', '.join(missing)} for {name} "
            "(--pfx, --password-env or --params-json)"
        )
    stand_ins = {"pfx_b64": "AA==", "password": ""}
    return {**params, **{field: stand_ins.get(field, "") for field in missing}}


def _render_template(args: argparse.Namespace) -> Any:
    from sectigo_chain.templates.render import render

    params = _fill_secrets(args.target, _params_from_args(args), args.embed_secrets)
    return render(args.target, params)


def _render_plan(path: str, embed: bool) -> list[Any]:
    from sectigo_chain.templates.render import TEMPLATE_NAMES, render

    if not os.path.isfile(path):
        _usage(f"{path!r} is neither a template ({', '.join(TEMPLATE_NAMES)}) nor a plan file")
    plan = _read_json(path, "plan file")
    if isinstance(plan, dict) and isinstance(plan.get("plan"), dict):
        plan = plan["plan"]  # the document `sectigo-chain plan --json` prints
    actions = plan.get("actions") if isinstance(plan, dict) else None
    if not isinstance(actions, list) or not actions:
        _usage(f'{path}: a plan file is {{"actions": [{{"template": NAME, "params": {{...}}}}]}}')
    if len(actions) > MAX_PLAN_ACTIONS:
        _usage(
            f"{path}: {len(actions)} actions; a plan holds at most {MAX_PLAN_ACTIONS} (the fix "
            "of one host is a handful): split it"
        )
    scripts = []
    for index, action in enumerate(actions, start=1):
        if not isinstance(action, dict) or not isinstance(action.get("template"), str):
            _usage(f"{path}: action {index} has no template name")
        params = action.get("params", {})
        if not isinstance(params, dict):
            _usage(f"{path}: action {index} params must be a JSON object")
        name = action["template"]
        if name in TEMPLATE_NAMES:
            params = _fill_secrets(name, params, embed)
        scripts.append(render(name, params))
    return scripts


def _write_script(path: str, text: str, *, secret: bool, force: bool) -> None:
    """Write ``text``; a file holding secrets is created new with mode 0600 (never widened)."""
    data = text.encode("ascii")
    try:
        if secret:
            if force and os.path.lexists(path):
                os.unlink(path)
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
            fd = os.open(path, flags, 0o600)
            try:
                if hasattr(os, "fchmod"):
                    os.fchmod(fd, 0o600)
                os.write(fd, data)
            finally:
                os.close(fd)
        else:
            with open(path, "wb") as handle:
                handle.write(data)
    except FileExistsError:
        _usage(f"{path} exists; pass --force to replace it (secrets go only into a new file)")
    except OSError as exc:
        _usage(f"cannot write {path}: {exc.strerror or exc}")
