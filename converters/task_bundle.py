"""Moved to :mod:`edgepose.task_bundle` (runtime code); this re-export goes once nothing imports it."""
from edgepose.task_bundle import *  # noqa: F401,F403
