"""`tldb check RUN`: hold a run to limits, for CI.

Limits come from flags or a TOML file (flags win); a baseline run adds "nothing worse than the
baseline", judged by the whole-run diff (tldb/rundiff.py): no new or more frequent graph
breaks, no frame recompiling more often, no new failures, no more cache misses. Each limit is
one JUnit test case, so a CI system lists which one failed; a multi-rank run is checked rank by
rank and a violation names its rank.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from xml.etree import ElementTree

from tldb.errors import InputError
from tldb.rundiff import MultiDiff, RunDiff
from tldb.runfacts import RunFacts, frame_text


@dataclass
class Limits:
    """What a run must satisfy. None: not checked."""

    max_graph_breaks: int | None = None
    max_recompiles: int | None = None  # per frame
    no_failures: bool = False
    max_compile_seconds: float | None = None
    max_cache_misses: int | None = None
    baseline: Path | None = None

    def any(self) -> bool:
        values = [getattr(self, f.name) for f in fields(self)]
        return any(v is not None and v is not False for v in values)  # 0 is a limit


@dataclass
class Outcome:
    """One limit checked: its name (the JUnit test case) and what broke it, if anything."""

    name: str
    description: str
    violations: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.violations


_TYPES = {
    "max_graph_breaks": int,
    "max_recompiles": int,
    "no_failures": bool,
    "max_compile_seconds": (int, float),
    "max_cache_misses": int,
    "baseline": str,
}


def read_limits(path: Path) -> Limits:
    """Limits from a TOML file: keys at the top level or in a [check] table, spelled with `_`
    or `-` (`max-graph-breaks = 0`). A relative baseline is relative to the file."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read {path}: {exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{path} is not valid TOML: {exc}") from None
    table = data.get("check", data)
    if not isinstance(table, dict):
        raise InputError(f"{path}: [check] must be a table")
    limits = Limits()
    for key, value in table.items():
        name = key.replace("-", "_")
        wanted = _TYPES.get(name)
        if wanted is None:
            raise InputError(f"{path}: unknown limit {key!r} (known: {', '.join(_TYPES)})")
        if not isinstance(value, wanted) or (wanted is int and isinstance(value, bool)):
            raise InputError(f"{path}: {key} has the wrong type ({type(value).__name__})")
        if name == "baseline":
            value = (path.parent / value) if not Path(value).is_absolute() else Path(value)
        setattr(limits, name, value)
    return limits


def merged(file_limits: Limits, flags: dict) -> Limits:
    """The file's limits with every flag that was given on top."""
    for name, value in flags.items():
        if value is not None and value is not False:
            setattr(file_limits, name, value)
    return file_limits


def _where(rank: int | None) -> str:
    return "" if rank is None else f"rank {rank}: "


def check_facts(limits: Limits, ranks: dict[int | None, RunFacts]) -> list[Outcome]:
    """Outcomes of the absolute limits, over every rank."""
    outcomes = []
    if limits.max_graph_breaks is not None:
        o = Outcome("max-graph-breaks", f"at most {limits.max_graph_breaks} graph break(s)")
        for rank, facts in ranks.items():
            n = sum(facts.graph_breaks.values())
            if n > limits.max_graph_breaks:
                o.violations.append(
                    f"{_where(rank)}{n} graph break(s), limit {limits.max_graph_breaks}"
                )
        outcomes.append(o)
    if limits.max_recompiles is not None:
        o = Outcome("max-recompiles", f"at most {limits.max_recompiles} recompile(s) per frame")
        for rank, facts in ranks.items():
            for frame, reasons in facts.recompiles.items():
                n = sum(reasons.values())
                if n > limits.max_recompiles:
                    o.violations.append(
                        f"{_where(rank)}{frame_text(frame)} recompiled {n} time(s), "
                        f"limit {limits.max_recompiles}"
                    )
        outcomes.append(o)
    if limits.no_failures:
        o = Outcome("no-failures", "no failed compile")
        for rank, facts in ranks.items():
            n = sum(facts.failures.values())
            if n:
                first = next(iter(facts.failures))
                o.violations.append(f"{_where(rank)}{n} failed compile(s), first: {first[0]}")
        outcomes.append(o)
    if limits.max_compile_seconds is not None:
        o = Outcome("max-compile-seconds", f"at most {limits.max_compile_seconds} s compiling")
        for rank, facts in ranks.items():
            if facts.compile_seconds > limits.max_compile_seconds:
                o.violations.append(
                    f"{_where(rank)}{facts.compile_seconds:.2f} s compiling, "
                    f"limit {limits.max_compile_seconds} s"
                )
        outcomes.append(o)
    if limits.max_cache_misses is not None:
        o = Outcome("max-cache-misses", f"at most {limits.max_cache_misses} cache miss(es)")
        for rank, facts in ranks.items():
            n = facts.cache_total("miss")
            if n > limits.max_cache_misses:
                o.violations.append(
                    f"{_where(rank)}{n} cache miss(es), limit {limits.max_cache_misses}"
                )
        outcomes.append(o)
    return outcomes


def _worse(rank: int | None, d: RunDiff) -> dict[str, list[str]]:
    where = _where(rank)
    found: dict[str, list[str]] = {"graph breaks": [], "recompiles": [], "failures": []}
    found["cache misses"] = []
    for c in d.graph_breaks:
        if c.b > c.a:
            found["graph breaks"].append(f"{where}graph break {c.a} -> {c.b} at {c.key[1]}")
    for r in d.recompiles:
        if r.b > r.a:
            found["recompiles"].append(f"{where}{r.frame} recompiles {r.a} -> {r.b}")
    for c in d.failures:
        if c.b > c.a:
            found["failures"].append(f"{where}failure {c.key[0]} {c.a} -> {c.b}")
    for c in d.caches:
        a, b = c.a.get("miss", 0), c.b.get("miss", 0)
        if b > a:
            found["cache misses"].append(f"{where}{c.cache} cache misses {a} -> {b}")
    return found


def check_baseline(diff: MultiDiff) -> list[Outcome]:
    """One outcome per thing that must not get worse than in the baseline (run A of diff)."""
    outcomes = {
        name: Outcome(f"baseline-{name.replace(' ', '-')}", f"no more {name} than the baseline")
        for name in ("graph breaks", "recompiles", "failures", "cache misses")
    }
    for rank in diff.ranks:
        for name, lines in _worse(rank.rank, rank.diff).items():
            outcomes[name].violations += lines
    return list(outcomes.values())


#: Characters XML 1.0 cannot hold at all (reasons come from logs and may carry them).
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def _xml(text: str) -> str:
    return _NOT_XML.sub("\ufffd", text)


def junit_xml(run_label: str, outcomes: list[Outcome]) -> bytes:
    """JUnit XML: one test suite, one test case per limit, a <failure> for each violated one."""
    failures = sum(not o.passed for o in outcomes)
    suites = ElementTree.Element("testsuites", name="tldb check")
    suite = ElementTree.SubElement(
        suites,
        "testsuite",
        name=_xml(f"tldb check {run_label}"),
        tests=str(len(outcomes)),
        failures=str(failures),
        errors="0",
        skipped="0",
    )
    for outcome in outcomes:
        case = ElementTree.SubElement(suite, "testcase", name=outcome.name, classname="tldb.check")
        if not outcome.passed:
            failure = ElementTree.SubElement(
                case, "failure", message=_xml(f"{outcome.description}: {outcome.violations[0]}")
            )
            failure.text = _xml("\n".join(outcome.violations))
    ElementTree.indent(suites)
    return ElementTree.tostring(suites, encoding="utf-8", xml_declaration=True) + b"\n"
