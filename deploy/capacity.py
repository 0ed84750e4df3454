"""The capacity table of deploy/README.md, computed from a load-test report (deploy/loadtest.py).

Usage: python deploy/capacity.py [deploy/results/loadtest.json]

Model (every assumption is a constant below, and stated in the table's notes):
- memory: a node pays each student the p95 of the measured peak PSS of their server and kernels
  at once (proportional set size: a page shared by k processes, such as torch's libraries in every
  kernel, counts 1/k in each, so the PSS of all processes sums to what the node holds). The
  Kubernetes guarantee, which packs the node, is that figure rounded up to a quarter GiB. The
  limit is what a cgroup may charge one pod: shared file pages are charged to the pod that first
  touched them, so it is sized from RSS (every mapped page counted in full), rounded up the same
  way and doubled (a second open notebook). Reports from before the load test read PSS have RSS
  only: both then come from RSS. PSS depends on how many processes share the pages: the load
  test's figure is the share at its density (N students on one machine, the image's files in one
  page cache); a node with fewer students pays more each, at most the RSS.
  A node of C cores has MEM_PER_CORE_GIB GiB per core, less what the system and kubelet keep
  (SYSTEM_RESERVE_GIB plus SYSTEM_RESERVE_FRACTION).
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


def student_memory(report: dict) -> tuple[float, float, str]:
    """(p95 peak PSS, p95 peak RSS, "PSS" or "RSS") of a student's server + kernels: PSS when the
    report has it, else RSS for both (runs from before the sampler read PSS)."""
    rss = report["student_peak_rss_mb"]["p95"]
    pss = report.get("student_peak_pss_mb", {}).get("p95")
    if pss is None or math.isnan(pss) or pss <= 0:
        return rss, rss, "RSS"
    return pss, rss, "PSS"


def quarter_gib(mb: float) -> int:
    return math.ceil(mb / QUARTER_GIB_MB) * QUARTER_GIB_MB


def guarantees(report: dict) -> dict:
    """Per-student memory guarantee (from PSS) and limit (from RSS), MiB rounded up to 1/4 GiB, and
    the CPU guarantee (cores)."""
    share_mb, rss_mb, basis = student_memory(report)
    cpu_s = report["student_cpu_s"]["p95"]
    return {"memory_guarantee_mb": quarter_gib(share_mb), "memory_limit_mb": 2 * quarter_gib(rss_mb), "cpu_s": cpu_s,
            "cpu_guarantee": round(cpu_s / RUN_ALL_BUDGET_S, 2), "peak_mb": share_mb, "peak_rss_mb": rss_mb,
            "basis": basis}


def per_node(cores: int, need: dict) -> dict:
    """How many students fit on a node of ``cores`` cores, by memory and by CPU."""
    usable_mb = (cores * MEM_PER_CORE_GIB * (1 - SYSTEM_RESERVE_FRACTION) - SYSTEM_RESERVE_GIB) * 1024
    by_memory = int(usable_mb // need["memory_guarantee_mb"])
    by_cpu = int(cores * RUN_ALL_BUDGET_S // need["cpu_s"]) if need["cpu_s"] > 0 else by_memory
    return {"cores": cores, "memory_gib": cores * MEM_PER_CORE_GIB, "by_memory": by_memory, "by_cpu": by_cpu,
            "students": min(by_memory, by_cpu), "bound": "memory" if by_memory <= by_cpu else "CPU"}


def peak_chapter(report: dict) -> tuple[str, str]:
    """The measured notebooks that peak in kernel memory (PSS when measured, else RSS) and in run time."""
    notebooks = report["notebooks"]
    key = "kernel_peak_pss_mb" if all("kernel_peak_pss_mb" in nb for nb in notebooks.values()) else "kernel_peak_rss_mb"
    memory = max(notebooks, key=lambda nb: notebooks[nb][key]["max"])
    time = max(notebooks, key=lambda nb: notebooks[nb]["time_s"]["p95"])
    return memory, time


def table(report: dict) -> str:
    """The capacity section's markdown: per-student needs, students per node, a class of 300."""
    need = guarantees(report)
    memory_peak, time_peak = peak_chapter(report)
    rows = [per_node(cores, need) for cores in NODE_CORES]
    lines = [
        f"Per student: peak memory {need['peak_mb']:.0f} MiB {need['basis']} (p95 of server + kernels"
        + (f"; RSS {need['peak_rss_mb']:.0f} MiB" if need["basis"] == "PSS" else "") + ") -> guarantee "
        f"{need['memory_guarantee_mb'] / 1024:g} GiB, limit {need['memory_limit_mb'] / 1024:g} GiB"
        + (" (from RSS: what a cgroup may charge one pod)" if need["basis"] == "PSS" else "") + "; CPU "
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
