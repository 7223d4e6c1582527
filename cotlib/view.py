"""Views of a record for a notebook: the search, step by step."""

from __future__ import annotations

import html

from cotlib import search
from cotlib.records import CoTRecord


def trace_html(record: CoTRecord) -> str:
    """An HTML view of one record: the first attempt with its first wrong step marked, how the search went (fresh
    samples, the binary search over the first attempt, later probes), the result."""
    steps = search.split_steps(record.first_attempt or "")
    err = record.first_error_step

    def colour(i: int) -> str:
        if err is None:
            return ""
        return "background:#fee2e2" if i == err else ("background:#dcfce7" if i < err else "color:#9ca3af")

    items = "".join(f'<li style="{colour(i)}">{html.escape(s)}</li>' for i, s in enumerate(steps, start=1))
    events = [e["event"] for e in record.trace]
    first_search = record.trace[: events.index("select")] if "select" in events else record.trace
    probes = "".join(
        f"<tr><td>{e['mid']}</td><td>{e['mc']:.2f}</td><td>{'good' if e['mc'] > 0 else 'bad'}</td></tr>"
        for e in first_search if e["event"] == "bisect"
    )
    later = sum(e["event"] == "bisect" for e in record.trace[len(first_search):])
    resamples = events.count("resample")
    where = f"step {err}" if err else "not located"
    result = (f"<pre style='white-space:pre-wrap;background:#f0fdf4'>{html.escape(record.solution)}</pre>"
              if record.solution else "<p><b>No verified solution within the budget.</b></p>")
    return (
        f"<div style='font-family:sans-serif;font-size:13px'><h4>{html.escape(record.question)}</h4>"
        f"<p>golden answer <code>{html.escape(record.answer)}</code> · method <b>{record.method}</b> · "
        f"{record.calls} calls · {record.rollouts} rollouts · first wrong step: {where}</p>"
        f"<p>First attempt (green: verified-good prefix, red: first wrong step):</p><ol>{items}</ol>"
        + (f"<p>{resamples} fresh sample(s) first{', then the binary search' if record.escalated else ''}.</p>"
           if resamples else "")
        + (f"<p>Binary search over the first attempt (MC = share of rollouts from that prefix that verify):</p>"
           f"<table><tr><th>prefix steps</th><th>MC</th><th>prefix</th></tr>{probes}</table>" if probes else "")
        + (f"<p>Then {later} more probe(s) on wrong rollouts, chosen by Q + U (step labels).</p>" if later else "")
        + f"<p>Result:</p>{result}</div>"
    )
