"""Turns the results of one bench run into one table (stdout) and one JSON file."""

import json
from pathlib import Path
from typing import Any

Row = tuple[str, str, str, str, str, str]


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.0f} ms" if value >= 10 else f"{value:.1f} ms"


def _load(figures: dict) -> str:
    return f"{figures['ok_per_s']:,.0f}/s p50 {_ms(figures['p50_ms'])} p99 {_ms(figures['p99_ms'])}"


def _met(is_met: bool | None) -> str:
    return "-" if is_met is None else "yes" if is_met else "NO"


def build_rows(results: dict[str, Any]) -> list[Row]:
    rows: list[Row] = []
    for c, run in results.get("ingest", {}).items():
        rows.append((f"(a,b) /log_event c={c} vs floor", _load(run["ours"]), _load(run["floor"]),
                     f"{run['ratio']:.2f}", ">= 0.6", _met(run["ratio"] >= 0.6)))
    for c, run in results.get("naive", {}).items():
        rows.append((f"(c) system c={c} vs naive: ev/s", _load(run["ours"]), _load(run["naive"]),
                     f"{run['throughput_ratio']:.1f}x", ">= 3x", _met(run["throughput_ratio"] >= 3)))
        rows.append((f"(c) system c={c} vs naive: p99", _ms(run["ours"]["p99_ms"]), _ms(run["naive"]["p99_ms"]),
                     f"{run['p99_ratio']:.2f}", "< 1", _met(run["p99_ratio"] < 1)))
    if batch := results.get("batch"):
        rows.append(("(d) /log_events x100, c=32", f"{batch['events_per_s']:,.0f} ev/s",
                     f"{batch['single_per_s']:,.0f} ev/s", f"{batch['ratio']:.1f}x", ">= 10x",
                     _met(batch["ratio"] >= 10)))
    if drain := results.get("drain"):
        rows.append(("(e) drain vs raw insert_many", f"{drain['drain_per_s']:,.0f} rec/s",
                     f"{drain['raw_insert_many_per_s']:,.0f} rec/s", f"{drain['ratio']:.2f}", ">= 0.8",
                     _met(drain["ratio"] >= 0.8)))
        rows.append(("(e) worker CPU per record", f"{drain['worker_cpu_us_per_record']:.0f} us",
                     f"{drain['stored']:,}/{drain['records']:,} stored", "", "", "-"))
    if outage := results.get("outage"):
        ours, naive = outage["ours"], outage["naive"]
        rows.append((f"(f) 2xx in 2 s, MongoDB down 10 of 20 s, {ours['achieved_per_s']:.0f}/s",
                     f"{100 * ours['share_2xx']:.2f}% of {ours['sent']:,}",
                     f"{100 * naive['share_2xx']:.2f}% of {naive['sent']:,}", "", "100% ours",
                     _met(ours["share_2xx"] == 1.0)))
        rows.append(("(f) then stored (ours)", f"{outage['stored']:,} for {ours['ok']:,} 2xx", "", "",
                     "all, once", _met(outage["stored"] == ours["ok"] == outage["distinct_ids"])))
    for key in ("lag", "lag_250"):
        if lag := results.get(key):
            is_met = lag["p99_ms"] is not None and lag["p99_ms"] < 1000 and lag["stored"] == lag["ok"]
            rows.append((f"(g) lag 202->MongoDB, {lag['target_per_s']}/s asked, {lag['achieved_per_s']:,.0f}/s sent",
                         f"p50 {_ms(lag['p50_ms'])} p99 {_ms(lag['p99_ms'])}",
                         f"max {_ms(lag['max_ms'])}, {lag['stored']:,}/{lag['ok']:,} stored", "", "p99 < 1 s",
                         _met(is_met) if key == "lag" else "-"))
    if rss := results.get("rss_mb"):
        rows.append(("(h) peak RSS under load", f"API {rss['api']:.0f} MB", f"worker {rss['worker']:.0f} MB",
                     "", "", "-"))
    if export := results.get("export"):
        floor = export["floor"]
        for fmt, run in export["formats"].items():
            rows.append((f"(export) {export['records']:,} records, {fmt} vs raw cursor",
                         f"{run['records_per_s']:,} rec/s", f"{floor['records_per_s']:,} rec/s",
                         f"{run['ratio_to_floor']:.2f}", ">= 0.5", _met(run["ratio_to_floor"] >= 0.5 and run["complete"])))
            rows.append((f"(export) API RSS while exporting {fmt}", f"+{run['rss_rise_mb']:.1f} MB",
                         f"peak {run['rss_peak_mb']:.0f} MB", "", "<= ~50 MB", _met(run["rss_rise_mb"] <= 50)))
    return rows


def format_table(results: dict[str, Any]) -> str:
    meta = results["meta"]
    header: Row = ("measure", "ours", "baseline", "ratio", "target", "met")
    rows = [header, *build_rows(results)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [f"fastapi-llm-logger bench, {meta['date']}: {meta['cpus']} cores, {meta['api_workers']} API processes, "
             f"load average {meta['load_before']:.1f} before / {meta['load_after']:.1f} after "
             f"({meta['runtime_s']:.0f} s). Shared machine: compare the ratios, not the absolute figures."]
    for i, row in enumerate(rows):
        lines.append("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
        if i == 0:
            lines.append("  ".join("-" * width for width in widths))
    return "\n".join(lines)


def save_json(results: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2, default=str) + "\n")
