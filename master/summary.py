"""The summary printed when a run ends."""

from __future__ import annotations

from rich.console import Console

from datablox.filenames import dead_letter_file
from datablox.master.display import element_table
from datablox.master.service import RunResult
from datablox.master.words import counted


def print_summary(result: RunResult, console: Console, table: bool = True) -> None:
    """The final table (unless ``table`` is off), dead letters, losses and problems."""
    st = result.state
    verdict = {0: "finished", 130: "stopped"}.get(result.exit_code, "FAILED")
    if table:
        console.print(
            element_table(
                st,
                f"{st.tradecraft.get('name', '')} {verdict} after {result.elapsed:.2f} s",
                elapsed=result.elapsed,
            )
        )
    sources = [v for v in st.elements.values() if v.stats.get("progress") is not None]
    for view in sources if table else []:
        rate = view.records_out / result.elapsed if result.elapsed > 0 else 0.0
        console.print(
            f"{view.name}: {view.records_out:,} records in {result.elapsed:.2f} s "
            f"({rate:,.0f} records/s)",
            highlight=False,
        )
    dead = st.dead_letters()
    if dead:
        for name, n in dead.items():
            file = dead_letter_file(name)
            where = (
                f"{file} in the run folder of node '{st.elements[name].node}' "
                f"(ROOT/runs/{result.run_id} there)"
                if result.remote
                else str(result.run_dir / file)
            )
            console.print(f"{name}: {n} record(s) in dead letters: {where}", highlight=False)
    checkpoints = result.checkpoints
    if table and checkpoints.get("restores"):
        seconds = checkpoints.get("recovery_seconds", [])
        recovered = (
            f" (back to work after {', '.join(f'{s:.2f}' for s in seconds)} s)" if seconds else ""
        )
        unfinished = checkpoints["restores"] - len(seconds)
        if unfinished > 0:
            recovered += f" ({counted(unfinished, 'restore')} did not get back to work)"
        console.print(
            f"restored {counted(checkpoints['restores'], 'time')} from checkpoints after "
            f"crashes{recovered}; {counted(checkpoints['completed'], 'checkpoint')} completed",
            highlight=False,
        )
        for edge, figures in st.connection_figures().items():
            if figures["replayed"] or figures["duplicates_dropped"]:
                console.print(
                    f"{edge}: {figures['replayed']:,} record(s) replayed (at least), "
                    f"{figures['duplicates_dropped']:,} duplicate(s) dropped",
                    highlight=False,
                )
    for name, shard in result.shards.items() if table else []:
        members = shard["members"]
        parts = shard["partitions"]
        held = f" ({', '.join(f'{m} {n}p' for m, n in parts.items())})" if parts else ""
        changes = [d for d in shard["decisions"] if d["planned"] != d["observed"]]
        console.print(
            f"shard {name} ({shard['kind']}): {len(members)} member(s) at the end{held}; "
            f"{len(changes)} scaling decision(s), {len(shard['moves'])} partition move(s)",
            highlight=False,
        )
        for d in changes:
            console.print(f"  at {d['at']:.1f} s: {d['reason']}", highlight=False)
        for line in shard.get("forced_not_done", []):
            console.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
    for line in st.warnings:
        console.print(f"[yellow]warning:[/yellow] {line}", highlight=False, soft_wrap=True)
    for line in st.lost():
        console.print(f"[red]lost:[/red] {line}", highlight=False, soft_wrap=True)
    for problem in result.problems:
        console.print(f"[red]error:[/red] {problem}", highlight=False, soft_wrap=True)
    if result.problems or dead:
        if result.remote:
            console.print(f"logs: ROOT/runs/{result.run_id}/logs on each node", highlight=False)
        else:
            console.print(f"logs: {result.run_dir / 'logs'}", highlight=False)
