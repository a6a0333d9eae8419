"""Writing an evaluation report: ``report.json``, a readable ``report.md`` (and ``report.html``) and ``chart.png``."""

from __future__ import annotations

import json
import subprocess
from collections import Counter
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from matplotlib.font_manager import FontProperties
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from rag.evaluation.calibration import relative_latency
from rag.evaluation.metrics import COUNT_METRICS, LATENCY_STEPS, RATE_METRICS, answer_span_recall
from rag.evaluation.report_html import render_html
from rag.evaluation.run_settings import flatten
from rag.files import write_json_atomic
from rag.qa.citations import is_refusal

WORST_FAILURES = 10
WORST_PER_CATEGORY = 3  # at least this many per category, WORST_FAILURES in all when categories are few
FAILURE_KINDS = (
    "gold not shown",
    "refused",
    "withheld by the check",
    "wrong answer",
    "partial answer",
    "answered the unanswerable",
)
CHART = "chart.png"
CHART_METRICS = ("hit@1", "hit@5", "mrr@10", "answer_accuracy", "citation_recall", "refusal_recall", "refused_answerable")
"""The bars of chart.png; ``refused_answerable`` is drawn as a share of the answerable questions answered."""
CHART_LABELS = {"refused_answerable": "refused answerable (share)"}
SUMMARY_METRICS = ("hit@1", "hit@5", "mrr@10", "answer_accuracy", "refused_answerable", "citation_precision", "citation_recall")
SCORE_METRICS = RATE_METRICS + COUNT_METRICS
UNDEFINED = "—"  # a figure that does not apply (no question it covers), never shown as 0
CATEGORY_ZH = {
    "overall": "总体",
    "figures": "数字",
    "dates": "日期",
    "entities": "实体",
    "policy": "政策",
    "multi_passage": "多段",
    "paraphrase": "改写",
    "unanswerable": "无答案",
    "followup": "追问",
    "answerable": "可回答",
    "multipart": "多部分",
    "near_miss": "近似无答案",
}
CJK_FAMILIES = (
    "Noto Sans CJK SC",
    "Noto Sans SC",
    "Source Han Sans SC",
    "WenQuanYi Zen Hei",
    "WenQuanYi Micro Hei",
    "SimHei",
    "Microsoft YaHei",
    "PingFang SC",
    "Heiti SC",
)


def write_report(report: Mapping[str, Any], out_dir: Path) -> list[Path]:
    """Write report.json, report.md, chart.png and report.html into ``out_dir``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path, chart_path, html_path = (out_dir / name for name in ("report.json", "report.md", CHART, "report.html"))
    write_json_atomic(json_path, report)
    draw_chart(report, chart_path)
    markdown = render_markdown(report)
    md_path.write_text(markdown, encoding="utf-8")
    html_path.write_text(render_html(markdown, "Evaluation report", {CHART: chart_path.read_bytes()}), encoding="utf-8")
    return [json_path, md_path, chart_path, html_path]


# --- markdown ------------------------------------------------------------------------------


def fmt(value: float | int | None, metric: str = "") -> str:
    """A metric for display: rates to 3 decimals, milliseconds to 0.1 below 100, counts whole, None as a dash."""
    if value is None:
        return UNDEFINED
    if metric.endswith(("_p50", "_p95")):
        return f"{value:.0f}" if value >= 100 else f"{value:.1f}"
    return str(value) if isinstance(value, int) else f"{value:.3f}"


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]


def _applicable(report: Mapping[str, Any], metrics: Sequence[str]) -> list[str]:
    return [m for m in metrics if report["overall"].get(m) is not None]


def failure_severity(row: Mapping[str, Any]) -> tuple[int, int] | None:
    """How bad a question went (bigger is worse), or None when it did not fail.

    Wrong answers come first; within each group, the later the first gold passage (or none).
    """
    wrong = row["correct"] is False
    missed = row["has_gold"] and row["rank"] != 1
    if not (wrong or missed):
        return None
    return int(wrong), row["rank"] or 10**6


def worst_failures(rows: Sequence[Mapping[str, Any]], limit: int = WORST_FAILURES) -> list[Mapping[str, Any]]:
    """The ``limit`` worst failed questions, worst first."""
    failed = [(severity, n, row) for n, row in enumerate(rows) if (severity := failure_severity(row)) is not None]
    failed.sort(key=lambda item: (item[0], -item[1]), reverse=True)  # ties keep file order
    return [row for _, _, row in failed[:limit]]


def failure_kind(row: Mapping[str, Any], top_k: int) -> str | None:
    """What went wrong with a wrongly answered question (one of :data:`FAILURE_KINDS`), or None."""
    if row["correct"] is not False:
        return None
    if not row["answerable"]:
        return "answered the unanswerable"
    if row["has_gold"] and (row["rank"] is None or row["rank"] > top_k):
        return "gold not shown"
    if row["refused"]:
        return "withheld by the check" if row.get("draft") and not is_refusal(row["draft"]) else "refused"
    return "partial answer" if answer_span_recall(row["answer"], row["expected"]) else "wrong answer"


def failure_lines(rows: Sequence[Mapping[str, Any]], top_k: int) -> list[str]:
    """The failure kinds counted per category, then the worst questions of each category."""
    categories = list(dict.fromkeys(row["category"] for row in rows))
    kinds = {c: [k for row in rows if row["category"] == c and (k := failure_kind(row, top_k))] for c in categories}
    lines = ["## Failure kinds by category", ""]
    lines += _table(["category", *FAILURE_KINDS], [[c, *(str(kinds[c].count(k)) for k in FAILURE_KINDS)] for c in categories])
    per_category = max(WORST_PER_CATEGORY, WORST_FAILURES // max(len(categories), 1))
    for category in categories:
        failures = worst_failures([row for row in rows if row["category"] == category], per_category)
        lines += ["", f"## Worst failures: {category} ({len(failures)} shown)", ""]
        lines += [line for row in failures for line in _failure_lines(row, failure_kind(row, top_k))] or ["None.", ""]
    return lines


def _expected(row: Mapping[str, Any]) -> str:
    if not row["expected"]:
        return "（拒答 refusal）"
    return " + ".join(" / ".join(part) for part in row["expected"])


def _failure_lines(row: Mapping[str, Any], kind: str | None = None) -> list[str]:
    rank = row["rank"] if row["rank"] is not None else ("miss" if row["has_gold"] else "n/a")
    lines = [
        f"### {row['qid']} ({row['category']}{': ' + kind if kind else ''}, gold rank {rank})",
        "",
        f"- question: {_cell(row['question'])}",
        f"- expected: {_cell(_expected(row))}",
    ]
    if row["answer"] is not None:
        lines.append(f"- got: {_cell(row['answer'])}")
    if row.get("part_recall") is not None and len(row["expected"]) > 1:
        lines.append(f"- parts found: {round(row['part_recall'] * len(row['expected']))} of {len(row['expected'])}")
    return lines + _answer_details(row) + [""]


def _answer_details(row: Mapping[str, Any], indent: str = "") -> list[str]:
    """What the model wrote when the citation check withheld it, and the passages cited (or retrieved)."""
    lines = []
    if row.get("draft") and row["draft"] != row["answer"]:
        lines.append(f"{indent}- the model wrote (before the citation check): {_cell(row['draft'])}")
    if row.get("retry"):
        withheld = _cell(row.get("withheld") or "")
        lines.append(f"{indent}- retried after a {row['retry']}; the attempt not shown: {withheld or '(empty)'}")
    passages, label = (row["citations"], "cited") if row["citations"] else (row["retrieved"], "retrieved")
    lines.append(f"{indent}- {label} passages:" if passages else f"{indent}- no passages cited")
    return lines + [
        f"{indent}  - {'✓ gold' if p['gold'] else '✗'} {p['doc_id']} 《{_cell(p['title'])}》: {_cell(p['text'])}"
        for p in passages
    ]


def gate_decision(report: Mapping[str, Any]) -> str:
    """The baseline gate's decision and reason in one line (or that there was no baseline)."""
    comparison = report.get("baseline")
    return comparison["decision"] if comparison else "not applied (no --baseline)"


def _calibration_text(calibration: Mapping[str, Any]) -> str:
    text = f"{calibration['embed_texts']} texts embedded in {calibration['embed_ms']:.1f} ms"
    if calibration["generate_ms"] is not None:
        text += f"; {calibration['generate_tokens']} tokens generated in {calibration['generate_ms']:.0f} ms"
    return text


def _ratio(value: float | None) -> str:
    return UNDEFINED if value is None else f"{value:.2f}×"


def _latency_lines(report: Mapping[str, Any]) -> list[str]:
    overall, calibration = report["overall"], report.get("calibration")
    steps = [step for step in LATENCY_STEPS if overall[f"{step}_p50"] is not None]
    header = ["step", "p50", "p95"] + (["p50 ÷ calibration"] if calibration else [])
    rows = [
        [step, fmt(overall[f"{step}_p50"], "_p50"), fmt(overall[f"{step}_p95"], "_p95")]
        + ([_ratio(relative_latency(overall[f"{step}_p50"], step, calibration))] if calibration else [])
        for step in steps
    ]
    return ["## Latency (ms)", "", *_table(header, rows), ""]


def render_markdown(report: Mapping[str, Any]) -> str:
    """The report as Markdown: the gate's decision, setup, scores, latency, baseline changes, worst failures."""
    config, overall = report["config"], report["overall"]
    rates = _applicable(report, SCORE_METRICS)
    lines = [
        "# Evaluation report",
        "",
        f"**Gate:** {gate_decision(report)}",
        "",
        *(_top_lines(report["baseline"]) if "baseline" in report else []),
        f"- date: {config['date']}, commit: {config['git_commit'] or 'unknown'}",
        f"- questions: {config['questions']['path']} ({config['questions']['count']} questions, "
        f"sha256 {config['questions']['sha256'][:12]})",
        f"- index: {config['index']['path']} ({config['index']['documents']} documents, {config['index']['chunks']} chunks)",
        f"- models: embedder {config['models']['embedder']}, LLM {config['models']['llm'] or '(retrieval only)'}",
        f"- retrieval: mode {config['mode']}, scored in the top {config['retrieval_k']}"
        + (f"; passages shown to the LLM: {config['top_k']}" if config["models"]["llm"] else "")
        + (f", cut to {config['passage_chars']} characters in all" if config.get("passage_chars") else ""),
        f"- repeatable with: the same commit, RAG_THREADS={config['threads']}, {config['decoding']} decoding",
        f"- machine calibration: {_calibration_text(report['calibration'])}",
        "",
        "## Scores",
        "",
        *_table(
            ["category", "n", *rates],
            [
                [name, fmt(s["questions"]), *(fmt(s[m]) for m in rates)]
                for name, s in [("**overall**", overall), *report["per_category"].items()]
            ],
        ),
        "",
        f"![scores per category]({CHART})",
        "",
        *_latency_lines(report),
        *_settings_lines(report.get("settings")),
    ]
    if "baseline" in report:
        lines += _baseline_lines(report["baseline"], {row["qid"]: row for row in report["questions"]})
    lines += failure_lines(report["questions"], config["top_k"])
    return "\n".join(lines)


def settings_diff_lines(settings: Mapping[str, Any] | None) -> list[str]:
    """The settings check against the baseline, one line per difference (``configuration: top_k: 3 → 5``)."""
    if not settings:
        return []
    if not settings["recorded"]:
        return ["the baseline records no settings; record a new one"]
    configuration = [f"configuration: {line}" for line in settings["configuration"]] or ["configuration: the same"]
    environment = [f"environment (information): {line}" for line in settings["environment"]]
    return configuration + environment


def flip_kind_lines(baseline: Mapping[str, Any]) -> list[str]:
    """The flips by kind: ``correct → refused ×3``."""
    return [f"{kind} ×{count}" for kind, count in baseline["flip_kinds"].items()] or ["no question flipped"]


def _top_lines(baseline: Mapping[str, Any]) -> list[str]:
    """What an evaluator reads first: the questions left out as unstable, the settings against the
    baseline, the margin, the flips by kind."""
    sections = [
        ("Settings against the baseline", settings_diff_lines(baseline.get("settings"))),
        ("Margin (more broken questions, none more fixed, that would fail this run)", baseline["margin_text"]),
        ("Flips by kind", flip_kind_lines(baseline)),
    ]
    lines = [unstable_line(baseline), ""] if baseline["unstable"] else []
    for title, items in sections:
        if items:
            lines += [f"**{title}:**", "", *(f"- {item}" for item in items), ""]
    return lines


def unstable_line(baseline: Mapping[str, Any]) -> str:
    """``left out as unstable: q012, q037``: the questions the baseline marks unstable, not compared."""
    return f"left out as unstable: {', '.join(baseline['unstable'])}"


def _settings_lines(settings: Mapping[str, Any] | None) -> list[str]:
    """The recorded settings, configuration then environment, one ``name: value`` per line."""
    if not settings:
        return []
    lines = ["## Settings (configuration must match the baseline's; environment is information)", ""]
    for part in ("configuration", "environment"):
        lines += [f"- {part}:", *(f"  - {name}: {_setting(value)}" for name, value in flatten(settings[part]).items())]
    return lines + [""]


def _setting(value: Any) -> str:
    if value is None:
        return UNDEFINED
    return _cell(value) if isinstance(value, str) and value else _cell(json.dumps(value, ensure_ascii=False))


def _deltas(baseline: Mapping[str, Any], *kinds: str) -> list[Mapping[str, Any]]:
    return [d for d in baseline["deltas"] if d["kind"] in kinds]


def _rate_table(baseline: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    header = ["metric", "baseline", "current", "change", "broken", "fixed", "p (one-sided)", "Holm level", "status"]
    return header, [_rate_cells(d) for d in _deltas(baseline, "rate", "count")]


def _rate_cells(d: Mapping[str, Any]) -> list[str]:
    tested = d["broken"] is not None
    count = d["kind"] == "count"
    return [
        d["metric"],
        fmt(d["baseline"]),
        fmt(d["current"]),
        f"{d['change']:+.0f}" if count else f"{d['change']:+.3f}",
        str(len(d["broken"])) if tested else UNDEFINED,
        str(len(d["fixed"])) if tested else UNDEFINED,
        f"{d['p_value']:.2g}" if tested else UNDEFINED,
        f"{d['holm_level']:.3g}" if d.get("holm_level") is not None else UNDEFINED,
        _status(d),
    ]


def _status(d: Mapping[str, Any]) -> str:
    if d["regressed"]:
        return "REGRESSED"
    return "ok" if d.get("gated", True) else "not gated"


def _latency_table(baseline: Mapping[str, Any]) -> tuple[list[str], list[list[str]]]:
    deltas = _deltas(baseline, "latency")
    ratios = any(d["current_ratio"] is not None for d in deltas)
    header = ["p50", "baseline", "current", "change", "allowed"] + (["baseline ÷ cal.", "current ÷ cal."] if ratios else [])
    rows = [
        [d["metric"], fmt(d["baseline"], "_p50"), fmt(d["current"], "_p50"), f"{d['change']:+.1f}", fmt(d["allowed"], "_p50")]
        + ([_ratio(d["baseline_ratio"]), _ratio(d["current_ratio"])] if ratios else [])
        + [_status(d)]
        for d in deltas
    ]
    return header + ["status"], rows


def _bold_status(header: list[str], rows: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    return header, [[*row[:-1], f"**{row[-1]}**" if row[-1] == "REGRESSED" else row[-1]] for row in rows]


def _flipped(change: Mapping[str, Any]) -> str:
    return "; ".join(f"{label}: {', '.join(change[label])}" for label in ("broken", "fixed") if change[label])


def _baseline_lines(baseline: Mapping[str, Any], rows: Mapping[str, Mapping[str, Any]]) -> list[str]:
    latency_mode = "gated: --gate-latency" if baseline["latency_gated"] else "reported, not gated"
    lines = [f"## Compared with {baseline['path']} ({baseline['compared']} questions)", "", f"Rule: {baseline['rule']}", ""]
    lines += [f"- note: {note}" for note in baseline["notes"]] + ([""] if baseline["notes"] else [])
    lines += [*_table(*_bold_status(*_rate_table(baseline))), ""]
    if _deltas(baseline, "latency"):
        lines += [f"### Latency (ms; {latency_mode})", "", *_table(*_bold_status(*_latency_table(baseline))), ""]
    if baseline["per_category"]:
        lines += [
            "### Per category (baseline → current; shown, not gated)",
            "",
            *_table(*_category_change_table(baseline["per_category"])),
            "",
        ]
    broken = [c for c in baseline["changes"] if c["broken"]]
    lines += [f"### Questions that flipped: {len(broken)} broken, {len(baseline['changes']) - len(broken)} fixed", ""]
    for change in baseline["changes"]:
        mark = "✗" if change["broken"] else "✓"
        lines += [
            f"- {mark} **{change['qid']}** ({change['category']}; {_flipped(change)}): {_cell(change['question'])}",
            f"  - expected: {_cell(_expected(rows[change['qid']]))}",
            f"  - baseline: {_cell(change['baseline'])}",
            f"  - current: {_cell(change['current'])}",
            *_answer_details(rows[change["qid"]], indent="  "),
        ]
    return lines + ([""] if baseline["changes"] else ["None.", ""])


def _change_cell(values: Mapping[str, Any]) -> str:
    before, after = values["baseline"], values["current"]
    if before == after:
        return fmt(after)
    return f"{fmt(before)} → {fmt(after)}"


def _category_change_table(per_category: Mapping[str, Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
    measured = {m for c in per_category.values() for m, v in c.items() if m != "questions" and v["current"] is not None}
    metrics = [m for m in next(iter(per_category.values())) if m in measured]  # what this run measured
    rows = [[name, fmt(c["questions"]), *(_change_cell(c[m]) for m in metrics)] for name, c in per_category.items()]
    return ["category", "n", *metrics], rows


# --- console ---------------------------------------------------------------------------------


def print_gate(report: Mapping[str, Any], console: Console) -> None:
    """The gate's decision in one line: red on a regression."""
    comparison = report.get("baseline")
    colour = "red" if comparison and comparison["regressed"] else "green" if comparison else "dim"
    console.print(f"[bold {colour}]Gate:[/] {escape(gate_decision(report))}", highlight=False)


def print_summary(report: Mapping[str, Any], console: Console) -> None:
    """Overall and per-category scores as one table."""
    metrics = _applicable(report, SUMMARY_METRICS)
    table = Table("category", "n", *metrics, title="rag eval")
    for name, summary in [("overall", report["overall"]), *report["per_category"].items()]:
        table.add_row(name, fmt(summary["questions"]), *(fmt(summary[m]) for m in metrics))
    console.print(table)


def _print_table(title: str, header: list[str], rows: list[list[str]], console: Console) -> None:
    table = Table(*header, title=title)
    for row in rows:
        status = {"REGRESSED": "[bold red]REGRESSED[/]", "ok": "[green]ok[/]"}.get(row[-1], row[-1])
        table.add_row(*row[:-1], status)
    console.print(table)


def print_settings_diff(settings: Mapping[str, Any], console: Console) -> None:
    """The settings check: configuration differences in red (yellow when allowed), environment ones dim."""
    for line in settings_diff_lines(settings):
        console.print(escape(line), style=_diff_style(line, settings["allowed_mismatch"]), highlight=False)


def _diff_style(line: str, allowed: bool) -> str:
    if line.startswith("environment"):
        return "dim"
    if line == "configuration: the same":
        return "green"
    return "red" if line.startswith("configuration") and not allowed else "yellow"


def print_baseline(baseline: Mapping[str, Any], console: Console) -> None:
    """The baseline comparison: questions left out as unstable, margin, flips by kind, gated metrics (regressions in
    red), latency, categories, flips."""
    if baseline["unstable"]:
        console.print(escape(unstable_line(baseline)), style="yellow", highlight=False)
    for line in baseline["margin_text"]:
        console.print(f"margin: {escape(line)}", highlight=False)
    console.print(f"flips by kind: {escape('; '.join(flip_kind_lines(baseline)))}", highlight=False)
    for note in baseline["notes"]:
        console.print(f"[yellow]note:[/] {escape(note)}", highlight=False)
    console.print(f"rule: {escape(baseline['rule'])}", style="dim", highlight=False)
    _print_table(f"compared with {baseline['path']} ({baseline['compared']} questions)", *_rate_table(baseline), console)
    if _deltas(baseline, "latency"):
        mode = "gated" if baseline["latency_gated"] else "not gated"
        _print_table(f"latency, ms ({mode})", *_latency_table(baseline), console)
    if baseline["per_category"]:
        header, rows = _category_change_table(baseline["per_category"])
        categories = Table(*header, title="per category, baseline → current (not gated)")
        for row in rows:
            categories.add_row(*row)
        console.print(categories)
    for label, colour in (("broken", "red"), ("fixed", "green")):
        qids = [f"{c['qid']}({','.join(c[label])})" for c in baseline["changes"] if c[label]]
        console.print(f"[{colour}]{label}[/] {len(qids)}: {escape(' '.join(qids)) or '-'}", highlight=False)


# --- chart ---------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def cjk_font() -> FontProperties | None:
    """A font with Chinese glyphs, or None; fonts found by fontconfig are registered first if needed."""
    from matplotlib import font_manager

    family = _known_cjk_family() or _register_fontconfig_cjk()
    if family is None:
        return None
    path = next(font.fname for font in font_manager.fontManager.ttflist if font.name == family)
    return font_manager.FontProperties(fname=path)  # by file: no family/weight lookup warnings


def _known_cjk_family() -> str | None:
    from matplotlib import font_manager

    installed = {font.name for font in font_manager.fontManager.ttflist}
    return next((name for name in CJK_FAMILIES if name in installed), None)


def _register_fontconfig_cjk() -> str | None:
    """Add the fonts ``fc-list :lang=zh`` knows (matplotlib's font cache may predate them)."""
    from matplotlib import font_manager

    try:
        listing = subprocess.run(["fc-list", ":lang=zh", "file"], capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    added = []
    for path in sorted(line.split(":")[0].strip() for line in listing.stdout.splitlines() if line.strip()):
        try:
            font_manager.fontManager.addfont(path)
            added.append(font_manager.FontProperties(fname=path).get_name())
        except (OSError, RuntimeError, ValueError):
            continue
    return _known_cjk_family() or next(iter(added), None)


def category_label(name: str, chinese: bool) -> str:
    """A bar group's label: Chinese over English when a CJK font is there, else ASCII only."""
    if chinese:
        return f"{CATEGORY_ZH[name]}\n{name}" if name in CATEGORY_ZH else name
    return name if name.isascii() else name.encode("ascii", "backslashreplace").decode()


def baseline_values(report: Mapping[str, Any], metric: str, groups: Sequence[str]) -> list[float | None]:
    """The baseline's value of ``metric`` for each chart group, where the comparison has one."""
    comparison = report.get("baseline")
    if not comparison:
        return [None] * len(groups)
    overall = {d["metric"]: d["baseline"] for d in comparison["deltas"]}
    per_category = comparison["per_category"]
    return [
        overall.get(metric) if name == "overall" else per_category.get(name, {}).get(metric, {}).get("baseline")
        for name in groups
    ]


def refused_shares(report: Mapping[str, Any]) -> dict[str, float | None]:
    """Per chart group (``overall`` and each category): the share of its answerable questions the LLM refused."""
    asked = Counter(row["category"] for row in report["questions"] if row.get("answer") is not None and row["answerable"])
    asked["overall"] = sum(asked.values())
    groups = {"overall": report["overall"], **report["per_category"]}
    return {
        name: summary["refused_answerable"] / asked[name]
        if summary.get("refused_answerable") is not None and asked[name]
        else None
        for name, summary in groups.items()
    }


def chart_values(report: Mapping[str, Any], metric: str) -> list[float | None]:
    """The value of ``metric`` for each chart group; ``refused_answerable`` as a share (:func:`refused_shares`)."""
    if metric == "refused_answerable":
        return list(refused_shares(report).values())
    return [summary.get(metric) for summary in (report["overall"], *report["per_category"].values())]


def draw_chart(report: Mapping[str, Any], path: Path) -> None:
    """A grouped bar chart of the rate metrics and the refusals, overall and per category; baseline values as
    black ticks (not for the refused share: the baseline's count has no share of its own)."""
    from matplotlib.figure import Figure

    metrics = _applicable(report, CHART_METRICS)
    groups = [("overall", report["overall"]), *report["per_category"].items()]
    font = cjk_font()
    figure = Figure(figsize=(max(8.0, 1.3 * len(groups)), 4.8), layout="constrained")
    axes = figure.add_subplot()
    width = 0.8 / max(len(metrics), 1)
    baseline_drawn = False
    for i, metric in enumerate(metrics):
        xs = [g + (i - (len(metrics) - 1) / 2) * width for g in range(len(groups))]
        values = chart_values(report, metric)
        kept = [(x, v) for x, v in zip(xs, values, strict=True) if v is not None]
        axes.bar([x for x, _ in kept], [v for _, v in kept], width, label=CHART_LABELS.get(metric, metric))
        base = baseline_values(report, metric, [name for name, _ in groups]) if metric != "refused_answerable" else []
        marks = [(x, v) for x, v in zip(xs, base, strict=False) if v is not None]
        axes.hlines(
            [v for _, v in marks],
            [x - width / 2 for x, _ in marks],
            [x + width / 2 for x, _ in marks],
            colors="black",
            linewidth=2,
            label="baseline" if marks and not baseline_drawn else "_nolegend_",
        )
        baseline_drawn = baseline_drawn or bool(marks)
    axes.set_xticks(range(len(groups)), [category_label(name, font is not None) for name, _ in groups], fontproperties=font)
    axes.set_ylim(0, 1.05)
    axes.set_ylabel("score")
    axes.grid(axis="y", alpha=0.3)
    entries = len(metrics) + baseline_drawn
    columns = min(max(entries, 1), 4)
    legend_rows = -(-entries // columns)
    axes.legend(ncols=columns, loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    config = report["config"]
    title = f"{config['mode']} retrieval, {config['questions']['count']} questions"
    axes.set_title(("各类别得分 · " if font else "Per-category scores: ") + title, pad=14 + 16 * legend_rows, fontproperties=font)
    figure.savefig(path, dpi=120)
