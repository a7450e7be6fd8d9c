"""The run's description, what MLflow's run page opens on: a heading naming the winner, one line per metric,
each group's mean per metric and the figure ([description][lossforge.evaluation.dashboard.run_page.description]);
a later `--log` replaces it, and what a person wrote below its last line stays.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from lossforge.evaluation.dashboard.who_won import (
    ARROWS,
    NO_SIGNIFICANT_DIFFERENCE,
    Winner,
    _fixed,
    _p,
    decimals,
    difference,
    winners,
)
from lossforge.evaluation.statistics.verdicts import VerdictRow

PLOT = "comparison/plot.png"
DESCRIPTION_TAG = "mlflow.note.content"
"""The MLflow tag whose markdown the run page shows first, as the run's description."""

DESCRIPTION_END = "*Written by `lossforge compare --log`; the next log replaces all above this line, not below.*"
"""The description's last line: what a later `--log` replaces ends here, and what a person wrote below it stays."""
MAX_DESCRIPTION = 8000
"""The longest tag value MLflow stores (`mlflow.utils.validation.MAX_TAG_VAL_LENGTH`), the description included."""


def description(
    *,
    run_id: str,
    summary: str,
    tables: Mapping[str, Sequence[VerdictRow]],
    plot: bool,
    previous: str = "",
    max_length: int = MAX_DESCRIPTION,
) -> str:
    """The parent run's description (markdown): who won, one line per metric, each group's means, the figure.

    Args:
        run_id: the parent run (the figure is linked from its artifacts).
        summary: what was compared, e.g. `3 groups from 9 runs, mean over seed`.
        tables: metric → its verdict rows.
        plot: whether `comparison/plot.png` was logged (and is shown).
        previous: the description the run has now: what a person wrote below
            `DESCRIPTION_END` is kept; an earlier comparison's text is replaced.
        max_length: the longest text MLflow takes as a tag's value: a description that would be longer leaves
            out the group table (it stays in `comparison/table.md`), then cuts the person's note.

    Returns:
        Markdown that MLflow renders on the run page.

    Examples:
        >>> from lossforge.evaluation.statistics import verdict_table
        >>> rows = verdict_table({"l2": dict(enumerate([2.1, 2.2, 2.0, 2.3, 2.1, 2.2])),
        ...                       "l1": dict(enumerate([0.1, 0.3, 0.2, 0.2, 0.1, 0.3]))},
        ...                      metric="test/mae", baseline="l2")
        >>> print(description(run_id="abc", summary="2 groups", tables={"test/mae": rows}, plot=True))
        ## Winner: l1
        <BLANKLINE>
        | metric | winner | difference to l2 [95 % CI] | p (Holm) |
        |---|---|---|---|
        | test/mae ↓ | **l1** | -1.950 [-2.060, -1.840] | 0.031 |
        <BLANKLINE>
        | group | n | test/mae ↓ |
        |---|---|---|
        | l2 (baseline) | 6 | 2.150 [2.040, 2.260] |
        | **l1** (winner) | 6 | **0.200** [0.106, 0.294] better |
        <BLANKLINE>
        2 groups; 95 % confidence intervals; verdicts: permutation tests against the baseline, Holm-adjusted
        per metric (α = 0.05). Full tables: `comparison/table.md` (Artifacts tab) or `lossforge compare abc`.
        <BLANKLINE>
        ![comparison: each seed, each group's mean and 95 % CI](get-artifact?path=comparison/plot.png&run_uuid=abc)
        <BLANKLINE>
        *Written by `lossforge compare --log`; the next log replaces all above this line, not below.*
        <BLANKLINE>
    """
    from lossforge.evaluation.statistics.difference import ALPHA

    found = winners(tables)
    baselines = {winner.baseline for winner in found if winner.baseline}
    parts = [headline(found)]
    if baselines:
        against = next(iter(baselines)) if len(baselines) == 1 else "the baseline"
        lines = []
        for winner in found:
            places = decimals(tables[winner.metric])
            row = winner.row
            if row is not None and row.group != winner.baseline:
                cells = [f"**{row.group}**", difference(row, places)]
                cells.append(_p(row.p_adjusted))
            elif row is not None:  # the baseline, every other group worse
                cells = [f"**{row.group}** (the baseline; every other group worse)", "", ""]
            else:
                cells = [winner.reason, "", ""]
            lines.append([f"{winner.metric} {ARROWS[winner.direction]}", *cells])
        parts.append(_markdown(["metric", "winner", f"difference to {against} [95 % CI]", "p (Holm)"], lines))
    parts.append(group_table(tables, found))
    if sum(len(part) + 2 for part in parts) + len(previous) + 1000 > max_length:  # the rest stays under 1000
        parts[-1] = (
            f"(The table of every group is in `comparison/table.md`: {len(parts[-1])} characters more than fit.)"
        )
    method = f"; verdicts: permutation tests against the baseline, Holm-adjusted\nper metric (α = {ALPHA:g})"
    parts.append(
        f"{summary}; 95 % confidence intervals{method if baselines else ''}. Full tables: `comparison/table.md` "
        f"(Artifacts tab) or `lossforge compare {run_id}`."
    )
    if plot:  # a relative link: MLflow's own artifact endpoint, under whatever prefix the dashboard is served
        figure = f"get-artifact?path={PLOT}&run_uuid={run_id}"
        parts.append(f"![comparison: each seed, each group's mean and 95 % CI]({figure})")
    parts.append(DESCRIPTION_END)
    kept = previous.split(DESCRIPTION_END, 1)[1].strip() if DESCRIPTION_END in previous else previous.strip()
    text = "\n\n".join(parts) + "\n"
    return text + (f"\n{kept}\n" if kept else "")[: max(max_length - len(text), 0)]


def headline(found: Sequence[Winner]) -> str:
    """The description's first line: the winner, else the metrics' answers.

    Examples:
        >>> headline([Winner("test/mae", "lower", "l2", None, None, "no significant difference")])
        '## No significant difference from the baseline l2'
    """
    named = [winner for winner in found if winner.group]
    if named and len({winner.group for winner in named}) == 1 and len(named) == len(found):
        return f"## Winner: {named[0].group}"
    if named:
        return "## Winners: " + "; ".join(f"{winner.group} on {winner.metric}" for winner in named)
    reasons = {winner.reason for winner in found}
    baselines = {winner.baseline for winner in found if winner.baseline}
    if reasons == {NO_SIGNIFICANT_DIFFERENCE} and len(baselines) == 1:
        return f"## No significant difference from the baseline {baselines.pop()}"
    return "## No winner: " + "; ".join(sorted(reasons))


def group_table(tables: Mapping[str, Sequence[VerdictRow]], found: Sequence[Winner]) -> str:
    """One line per group: n and, per metric, its mean with 95 % CI and its verdict; the winner in bold."""
    won = {(winner.metric, winner.group) for winner in found if winner.group}
    groups: dict[str, dict[str, VerdictRow]] = {}
    for metric, rows in tables.items():
        for each in rows:
            groups.setdefault(each.group, {})[metric] = each
    baselines = {each.baseline for rows in tables.values() for each in rows if each.baseline}
    header = ["group", "n"] + [f"{metric} {ARROWS[rows[0].direction]}" for metric, rows in tables.items() if rows]
    lines = []
    for group, by_metric in groups.items():
        wins = any((metric, group) in won for metric in by_metric)
        name = f"**{group}** (winner)" if wins else group
        if group in baselines:
            name += " (baseline)"
        counts = sorted({each.n for each in by_metric.values()})
        cells = [name, "/".join(str(n) for n in counts)]
        for metric in tables:
            row = by_metric.get(metric)
            if row is None:
                cells.append("—")
                continue
            places = decimals(tables[metric])
            mean = _fixed(row.mean, places)
            cell = f"**{mean}**" if (metric, group) in won else mean
            if row.ci_low is not None and row.ci_high is not None:
                cell += f" [{_fixed(row.ci_low, places)}, {_fixed(row.ci_high, places)}]"
            if row.verdict and not row.verdict.startswith("too few"):  # that one is said once, per metric
                cell += f" {row.verdict}"
            cells.append(cell)
        lines.append(cells)
    return _markdown(header, lines)


def _markdown(header: Sequence[str], lines: Sequence[Sequence[str]]) -> str:
    rows = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows += ["| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |" for cells in lines]
    return "\n".join(rows)
