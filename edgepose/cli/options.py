"""Pipeline flags generated from :class:`edgepose.options.Options`, never copied by hand:
one argparse group per concern (``edgepose.options.GROUPS``), one flag per field, its help
from the field's metadata."""

from __future__ import annotations

import argparse
import dataclasses
import re
import typing

from edgepose.errors import InputError
from edgepose.options import BACKENDS, DECODERS, GROUPS, Options, fields_by_group

CHOICES = {"backend": BACKENDS, "decoder": DECODERS}
# Fields that only matter for related frames (video mode): eval and other image-by-image
# commands leave them out, with the smoothing group.
VIDEO_ONLY = ("static_image_mode", "redetect_every", "redetect_when_full")


def says_default(text: str) -> bool:
    """Whether a help text already says its default ("default: on", "; default the CPU
    cores"), as opposed to naming a preset called default ("light, default (MediaPipe's)")."""
    return re.search(r"\bdefault\b(?!\s*\()", text, re.IGNORECASE) is not None


class HelpFormatter(argparse.HelpFormatter):
    """Says a flag's default where its help does not already say it and there is one to
    say (not None, not an off switch)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if says_default(text) or action.default in (None, False, argparse.SUPPRESS):
            return text
        if not action.option_strings and action.nargs not in ("?", "*"):
            return text
        return text + " (default: %(default)s)"


def field_help(field: dataclasses.Field) -> str:
    """The field's help, with its default unless the help already says it (or it is None)."""
    text = field.metadata["help"].replace("%", "%%")
    if says_default(text) or field.default is None:
        return text
    if isinstance(field.default, bool):
        return f"{text} (default: {'on' if field.default else 'off'})"
    return f"{text} (default: {field.default})"


def value_type(field: dataclasses.Field) -> type:
    """bool, int, float or str: the field's type without its ``| None``."""
    hint = typing.get_type_hints(Options)[field.name]
    kinds = [k for k in typing.get_args(hint) if k is not type(None)] or [hint]
    return kinds[0] if kinds[0] in (bool, int, float) else str


def add_option_flags(parser: argparse.ArgumentParser, skip_groups: tuple[str, ...] = (),
                     skip_fields: tuple[str, ...] = ()) -> None:
    """One argument group per concern and one flag per Options field. Flags default to
    "not given" (argparse.SUPPRESS), so that only what the user typed overrides a field."""
    for group, fields in fields_by_group().items():
        fields = [f for f in fields if f.name not in skip_fields]
        if group in skip_groups or not fields:
            continue
        flags = parser.add_argument_group(GROUPS[group])
        for field in fields:
            flag = "--" + field.name.replace("_", "-")
            kind = value_type(field)
            if kind is bool:
                flags.add_argument(flag, action=argparse.BooleanOptionalAction,
                                   default=argparse.SUPPRESS, help=field_help(field))
                continue
            choices = CHOICES.get(field.name)
            metavar = None if choices else {int: "N", float: "VALUE"}.get(
                kind, field.name.split("_")[-1].upper())
            flags.add_argument(flag, type=kind, default=argparse.SUPPRESS, metavar=metavar,
                               choices=choices, help=field_help(field))


def options_from_args(args: argparse.Namespace, **defaults) -> Options:
    """Options from the flags given, over ``defaults``; InputError for a bad value."""
    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(Options)
             if hasattr(args, f.name)}
    if str(given.get("model", "")).lower().endswith(".task") and "backend" not in given:
        # a MediaPipe .task bundle (edgepose convert task-bundle) runs on MediaPipe Tasks only
        defaults["backend"] = "mediapipe-tasks"
    try:
        return Options(**{**defaults, **given})
    except ValueError as exc:
        raise InputError(str(exc)) from None
