"""Run a whole study into one folder, resumably, and write its summary and reports.

Layout of a study run folder::

    RUN/study.yaml            a copy of the study file
    RUN/<step>/               one folder per step (a run, CV run, sweep, pipeline, radiogenomics
                              or comparison folder), with step.json (its resolved settings) and
                              report.html / report.md
    RUN/study.json            every step's headline metrics, protocol, data and the anchors
    RUN/summary.md            the summary table in Markdown
    RUN/report.html, report.md  the study report (summary, comparisons, figures)

A step whose summary file exists and whose ``step.json`` matches the plan is reused, so a killed
study resumes where it stopped (a half-trained step resumes from its last checkpoint). Settings
that changed since are refused rather than silently mixed.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from braintumor.errors import ConfigError
from braintumor.experiments.headlines import protocol, step_metrics, summary_rows
from braintumor.experiments.plan import PlannedStep, plan_study
from braintumor.experiments.steps import drop_resume_checkpoints, run_step, step_record, write_step_report
from braintumor.experiments.study import TRAINING_KINDS, Study
from braintumor.io_utils import atomic_write_json, atomic_write_text
from braintumor.run_dir import RunDir

Log = Callable[[str], None]
STEP_FILE = "step.json"


def _check_fingerprint(step: PlannedStep) -> bool:
    """True if the step is finished with the same settings; raises if its settings changed."""
    record = step.folder / STEP_FILE
    if not record.is_file():
        if step.done_file.is_file():
            raise ConfigError(
                f"{step.folder}: holds results but no {STEP_FILE}; it was not written by this study. "
                "Use another --out or move the folder away"
            )
        return False
    saved = json.loads(record.read_text())
    wanted = step_record(step)
    if saved != json.loads(json.dumps(wanted)):
        changed = sorted(k for k in wanted if saved.get(k) != json.loads(json.dumps(wanted[k])))
        raise ConfigError(
            f"{step.folder}: was run with other settings ({', '.join(changed)} changed, e.g. --quick "
            "or --data); delete that step folder to rerun it, or use another --out"
        )
    return step.done_file.is_file()


def _entry(step: PlannedStep, out: Path, status: str, seconds: float | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "name": step.name, "kind": step.kind, "folder": step.name, "status": status,
        "seconds": None if seconds is None else round(seconds, 1),
        "description": step.spec.description, "data": step.data_name if step.kind != "compare" else "",
    }  # fmt: skip
    if status in ("ran", "reused"):
        metrics, extras = step_metrics(step)
        entry.update(protocol=protocol(step), metrics=metrics, extras=extras)
        html = RunDir(step.folder).report_html
        entry["report"] = str(html.relative_to(out)) if html.is_file() else None
    return entry


class StudyRun:
    """The state of one study run: its plan, the study record and where it is written."""

    def __init__(self, study: Study, out: Path, steps: list[PlannedStep], quick: bool, log: Log) -> None:
        self.study, self.out, self.steps, self.log = study, out, steps, log
        self.started = time.perf_counter()
        self.record: dict[str, Any] = {
            "study": study.name, "file": str(study.path), "description": study.description, "quick": quick,
            "out": str(out), "started": datetime.now(UTC).isoformat(timespec="seconds"), "status": "running",
            "error": None, "seconds": None,
            "datasets": {s.data_name: str(s.data) for s in steps if s.kind != "compare"},
            "anchors": {k: {"value": a.value, "source": a.source, "data": a.data}
                        for k, a in study.anchors.items()},
            "steps": [], "table": [],
        }  # fmt: skip

    def save(self) -> None:
        """Write ``study.json`` and ``summary.md`` as they stand."""
        from braintumor.reports.study import summary_markdown

        self.record["seconds"] = round(time.perf_counter() - self.started, 1)
        self.record["table"] = summary_rows(self.record["steps"], self.study.anchors)
        atomic_write_json(self.out / "study.json", self.record)
        atomic_write_text(self.out / "summary.md", summary_markdown(self.record))

    def run_one(self, i: int, step: PlannedStep) -> None:
        n = len(self.steps)
        if _check_fingerprint(step):
            self.log(f"[{i}/{n}] {step.name} ({step.kind}): finished earlier, reused")
            if not RunDir(step.folder).report_html.is_file():
                write_step_report(step)
            self.record["steps"].append(_entry(step, self.out, "reused", None))
            return
        self.log(f"[{i}/{n}] {step.name} ({step.kind}) ...")
        step.folder.mkdir(parents=True, exist_ok=True)
        atomic_write_json(step.folder / STEP_FILE, step_record(step))
        start = time.perf_counter()
        try:
            run_step(step)
            if step.kind in TRAINING_KINDS:
                drop_resume_checkpoints(step.folder)
            write_step_report(step)
        except BaseException:
            self.record["steps"].append(_entry(step, self.out, "failed", time.perf_counter() - start))
            raise
        entry = _entry(step, self.out, "ran", time.perf_counter() - start)
        self.record["steps"].append(entry)
        self.log(f"[{i}/{n}] {step.name} done in {entry['seconds']:.0f} s")


def run_study(
    study: Study,
    out: str | Path,
    quick: bool = False,
    data: dict[str, str] | None = None,
    shared: Path | None = None,
    trainer: dict[str, Any] | None = None,
    log: Log | None = None,
) -> dict[str, Any]:
    """Run every step of ``study`` into ``out``; returns the study record (``study.json``).

    Args:
        quick: the study's quick mode (few epochs, small samples): a smoke run of every step.
        data: dataset replacements {name: path}; ``shared``: what ``${shared}`` stands for.
        trainer: Lightning Trainer arguments for every training step.
        log: called with one line per step (start, reuse, finish).

    Raises:
        ConfigError / DataError: before anything runs, for a bad plan; later, the failing step's
        error (``study.json`` then records the failure).
    """
    out = Path(out).resolve()
    steps = plan_study(study, out, quick, data, shared, trainer)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "study.yaml", study.path.read_text())
    run = StudyRun(study, out, steps, quick, log or (lambda _: None))
    try:
        for i, step in enumerate(steps, 1):
            run.run_one(i, step)
            run.save()
    except BaseException as exc:
        run.record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
        with suppress(Exception):  # the step's own error is the one to report
            run.save()
            _write_study_report(out)
        raise
    run.record["status"] = "done"
    run.save()
    run.record["report"] = _write_study_report(out)
    run.record["summary"] = str(out / "summary.md")
    return run.record


def _write_study_report(out: Path) -> str:
    from braintumor.reports.html import write_report

    return str(write_report(out)["html"])
