"""Versioned, declarative SLO specs (`specs/*.yaml`) and their models: the one source of truth for rules,
dashboards, routes and the service's /slo endpoint."""

from slos.errors import Problem, SpecError
from slos.loader import DEFAULT_SPECS_DIR, LoadedSpec, SpecSet, load_file, load_specs
from slos.models import SLO, Op, Severity, SpecFile

__all__ = [
    "DEFAULT_SPECS_DIR",
    "SLO",
    "LoadedSpec",
    "Op",
    "Problem",
    "Severity",
    "SpecError",
    "SpecFile",
    "SpecSet",
    "load_file",
    "load_specs",
]
