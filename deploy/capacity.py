"""The capacity table of deploy/README.md, computed from a load-test report (deploy/loadtest.py).

Usage: python deploy/capacity.py [deploy/results/loadtest.json]

Model (every assumption is a constant below, and stated in the table's notes):
- memory: a student needs the p95 of the measured peak RSS of their server and kernels at once;
  the Kubernetes guarantee is that figure rounded up to a quarter GiB, the limit twice it (a
  second open notebook). A node of C cores has MEM_PER_CORE_GIB GiB per core, less what the
  system and kubelet keep (SYSTEM_RESERVE_GIB plus SYSTEM_RESERVE_FRACTION).
- CPU: the peak of a lecture is the whole class running the measured chapters at the same time;
  a node of C cores then needs (students x CPU-seconds per student) / C seconds for everyone to
  finish, which must stay within RUN_ALL_BUDGET_S. The CPU guarantee per student is
  CPU-seconds / RUN_ALL_BUDGET_S cores.
Students per node is the smaller of the two bounds; the table says which one binds.
- the challenge service (one process beside the hub, serving the whole class): its CPU-seconds per
  student scale linearly to the class (every check and 06.8 query batch of the measured chapters);
  its latency per 06.8 query batch is what a student waits for, measured with the class at once.
"""
from __future__ import annotations

import json
import math
import sys
from pathlib import Path

MEM_PER_CORE_GIB = 4.0  # "standard" cloud machine types: 2 cores / 8 GiB, 8 / 32, 32 / 128
SYSTEM_RESERVE_GIB = 1.0  # kubelet, container runtime, daemonsets
SYSTEM_RESERVE_FRACTION = 0.10
RUN_ALL_BUDGET_S = 300  # everyone runs the heaviest chapters at once: all done within 5 minutes
NODE_CORES = (2, 8, 32)
CLASS_SIZE = 300
QUARTER_GIB_MB = 256


def guarantees(report: dict) -> dict:
    """Per-student memory guarantee/limit (MiB, rounded up to 1/4 GiB) and CPU guarantee (cores)."""
    peak_mb = report["student_peak_rss_mb"]["p95"]
    memory = math.ceil(peak_mb / QUARTER_GIB_MB) * QUARTER_GIB_MB
    cpu_s = report["student_cpu_s"]["p95"]
    return {"memory_guarantee_mb": memory, "memory_limit_mb": 2 * memory, "cpu_s": cpu_s,
            "cpu_guarantee": round(cpu_s / RUN_ALL_BUDGET_S, 2), "peak_mb": peak_mb}


def per_node(cores: int, need: dict) -> dict:
    """How many students fit on a node of ``cores`` cores, by memory and by CPU."""
    usable_mb = (cores * MEM_PER_CORE_GIB * (1 - SYSTEM_RESERVE_FRACTION) - SYSTEM_RESERVE_GIB) * 1024
    by_memory = int(usable_mb // need["memory_guarantee_mb"])
    by_cpu = int(cores * RUN_ALL_BUDGET_S // need["cpu_s"]) if need["cpu_s"] > 0 else by_memory
    return {"cores": cores, "memory_gib": cores * MEM_PER_CORE_GIB, "by_memory": by_memory, "by_cpu": by_cpu,
            "students": min(by_memory, by_cpu), "bound": "memory" if by_memory <= by_cpu else "CPU"}


def peak_chapter(report: dict) -> tuple[str, str]:
    """The measured notebooks that peak in kernel memory and in run time."""
    notebooks = report["notebooks"]
    memory = max(notebooks, key=lambda nb: notebooks[nb]["kernel_peak_rss_mb"]["max"])
    time = max(notebooks, key=lambda nb: notebooks[nb]["time_s"]["p95"])
    return memory, time


def table(report: dict) -> str:
    """The capacity section's markdown: per-student needs, students per node, a class of 300."""
    need = guarantees(report)
    memory_peak, time_peak = peak_chapter(report)
    rows = [per_node(cores, need) for cores in NODE_CORES]
    lines = [
        f"Per student: peak memory {need['peak_mb']:.0f} MiB (p95 of server + kernels) -> guarantee "
        f"{need['memory_guarantee_mb'] / 1024:g} GiB, limit {need['memory_limit_mb'] / 1024:g} GiB; CPU "
        f"{need['cpu_s']:.0f} CPU-seconds for the measured chapters (p95) -> guarantee {need['cpu_guarantee']} "
        f"core, limit 1 core. Peak chapter: `{memory_peak}` for memory, `{time_peak}` for run time.", "",
        "| node | memory | students by memory | students by CPU | students per node | bound by |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r['cores']} cores | {r['memory_gib']:g} GiB | {r['by_memory']} | {r['by_cpu']} | "
              f"**{r['students']}** | {r['bound']} |" for r in rows]
    lines += ["", f"A class of {CLASS_SIZE}, everyone logged in at once:", ""]
    for r in rows:
        if r["students"] > 0:
            lines.append(f"- on {r['cores']}-core nodes: {math.ceil(CLASS_SIZE / r['students'])} user nodes "
                         f"({r['students']} students each), plus one hub node")
    lines += ["", f"Requests for {CLASS_SIZE}: {CLASS_SIZE * need['memory_guarantee_mb'] / 1024:g} GiB of memory "
              f"and {CLASS_SIZE * need['cpu_guarantee']:g} cores guaranteed in total.", "",
              f"Assumptions: {MEM_PER_CORE_GIB:g} GiB per core; {SYSTEM_RESERVE_GIB:g} GiB + "
              f"{SYSTEM_RESERVE_FRACTION:.0%} of a node kept by the system; at the peak the whole class runs the "
              f"measured chapters at once and all must finish within {RUN_ALL_BUDGET_S} s; the load test's "
              f"machine was shared (see its load averages), so its times are pessimistic."]
    return "\n".join(lines + service_lines(report)) + "\n"


def service_lines(report: dict) -> list[str]:
    """The challenge service's row of the capacity section (reports from before it ran as a hub service: none)."""
    service = report.get("challenge_service")
    if not service or not service.get("batches"):
        return []
    per_student = service["cpu_s"] / report["students"]
    lat = service["batch_latency_ms"]
    return ["", "| challenge service (hub service), per 06.8 query batch | p50 | p95 | max |", "|---|---|---|---|",
            f"| latency, {report['students']} students at once | {lat['p50']:.0f} ms | {lat['p95']:.0f} ms | "
            f"{lat['max']:.0f} ms |", "",
            f"Challenge service: {service['batches']} batches of 06.8 ({service['rows_per_student']['p50']:g} rows per "
            f"student at the median), {service['cpu_s']:g} CPU-seconds for {report['students']} students over the run "
            f"({per_student:.2f} each, every check of the measured chapters included: "
            f"{CLASS_SIZE * per_student:.0f} CPU-seconds for {CLASS_SIZE}, "
            f"{CLASS_SIZE * per_student / RUN_ALL_BUDGET_S:.2f} core within {RUN_ALL_BUDGET_S} s), "
            f"peak RSS {service['peak_rss_mb']:.0f} MiB."]


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    path = Path(argv[0]) if argv else Path(__file__).with_name("results") / "loadtest.json"
    text = table(json.loads(path.read_text()))
    path.with_name("capacity.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
