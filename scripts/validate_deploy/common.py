"""Paths and reading."""
from pathlib import Path

from .facts import ROOT


def read(path):
    return (ROOT / path).read_text()


def rel(path):
    return Path(path).resolve().relative_to(ROOT).as_posix()
