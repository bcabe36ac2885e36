"""``edgepose models``: the known models, where each is found, and downloads."""

from __future__ import annotations

import argparse
import json

from edgepose.cli.options import HelpFormatter
from edgepose.errors import InputError


def add_parser(subparsers) -> argparse.ArgumentParser:
    mods = subparsers.add_parser("models", help="list known models and where they are found",
                                 formatter_class=HelpFormatter)
    mods.add_argument("--download", nargs="+", metavar="NAME",
                      help="download these models into the cache (sha256-checked)")
    mods.add_argument("--json", action="store_true", help="print JSON")
    mods.set_defaults(func=cmd_models)
    return mods


def cmd_models(args: argparse.Namespace) -> int:
    from edgepose import models, registry

    for name in args.download or []:
        if name not in models.KNOWN_MODELS:
            raise InputError(f"unknown model {name!r}: choose from {', '.join(models.KNOWN_MODELS)}")
        found = models.find_local(models.KNOWN_MODELS[name])
        path = found[1] if found else models.fetch(models.KNOWN_MODELS[name])
        print(f"{name}: {path}")
    rows = registry.status()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{'name':18} {'role':9} {'layout':27} {'sha256':14} where")
    for r in rows:
        if r["path"]:
            where = f"{r['path']} ({r['source']})"
            if r.get("speedup"):  # yolo11n-pose without its heads file
                where += f"; `{r['speedup']}` makes it run at any input size"
        elif r["state"] == "convert":
            where = f"needs converting: {r.get('convert') or 'edgepose convert tfjs ' + r['name']}"
        elif r["state"] == "not shipped":
            where = f"not shipped: put {r['file']} in EDGEPOSE_MODEL_PATH"
        else:
            where = "missing: edgepose models --download " + r["name"]
        layout = r["layout"] if r.get("license") is None else f"{r['decoder']} (see below)"
        print(f"{r['name']:18} {r['role']:9} {layout:27} {r['sha256'][:12]}.. {where}")
        if r.get("license"):
            print(f"{'':18} license {r['license']}, not shipped by edgepose; origin: {r['origin']}; "
                  f"layout: {r['layout']}")
    print(f"cache: {models.cache_dir()}")
    return 0
