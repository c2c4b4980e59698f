"""The benchmark chart: KMS calls, throughput, latency and storage per approach."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def chart(results: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r["approach"] for r in results]
    panels = (
        ("KMS calls per record", "kms_calls_per_record_write", "kms_calls_per_record_read", True),
        ("records per second", "records_per_s_write", "records_per_s_read", False),
        ("p50 latency per record (ms)", "p50_ms_write", "p50_ms_read", False),
        ("stored bytes per record", "stored_bytes_per_record", None, False),
    )
    fig, axes = plt.subplots(1, len(panels), figsize=(20, 5.5))
    ys = range(len(names))
    for ax, (label, write_key, read_key, log) in zip(axes, panels, strict=True):
        if read_key:
            ax.barh([y + 0.2 for y in ys], [r[write_key] for r in results], height=0.4, label="write", color="#4C72B0")
            ax.barh([y - 0.2 for y in ys], [r[read_key] for r in results], height=0.4, label="read", color="#DD8452")
            ax.legend(loc="lower right", fontsize=8)
        else:
            ax.barh(list(ys), [r[write_key] for r in results], height=0.6, color="#55A868")
        if log and read_key:
            ax.set_xscale("log")
            for y, r in zip(ys, results, strict=True):
                ax.text(r[write_key], y + 0.2, f" {r[write_key]:.3g}", va="center", fontsize=7)
                ax.text(r[read_key], y - 0.2, f" {r[read_key]:.3g}", va="center", fontsize=7)
        ax.set_yticks(list(ys))
        ax.set_yticklabels(names if ax is axes[0] else [], fontsize=9)
        ax.invert_yaxis()
        ax.set_title(label, fontsize=11)
        ax.grid(axis="x", alpha=0.3)
    fig.suptitle(title, fontsize=12)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
