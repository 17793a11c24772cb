"""Studies: one config per study, one command (``braintumor experiment run``) for all its steps.

``study`` parses and checks a study file, ``plan`` resolves its datasets and overrides, ``steps``
runs each kind of step with the library functions, ``pipeline_eval`` scores segment -> crop ->
classify on each fold's unseen patients, ``headlines`` reads each step's numbers back and
``runner`` ties them together (resumable) and writes ``study.json``, ``summary.md`` and the report.
"""

from braintumor.experiments.plan import find_shared_data, parse_data_options, plan_study
from braintumor.experiments.runner import run_study
from braintumor.experiments.study import STEP_KINDS, Study, load_study

__all__ = [
    "STEP_KINDS",
    "Study",
    "find_shared_data",
    "load_study",
    "parse_data_options",
    "plan_study",
    "run_study",
]
