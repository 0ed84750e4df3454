"""The load test of deploy/ at CI size: a real JupyterHub on loopback, three students.

``make loadtest N=20`` is the measurement (its figures are in deploy/README.md); here three
students run a two-cell notebook and then exercise 06.8 through the hub's challenge service at
once, every one must finish, the report must be well formed, and nothing the run started may be
left behind.
"""
from __future__ import annotations

import json
import math
import shutil
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
import capacity  # noqa: E402
import loadtest  # noqa: E402


def test_percentiles_use_the_nearest_rank():
    assert loadtest.percentiles([5.0, 1.0, 3.0, 2.0, 4.0]) == {"p50": 3.0, "p95": 5.0, "max": 5.0}
    assert loadtest.percentiles(list(map(float, range(1, 21))))["p95"] == 19.0
    assert all(math.isnan(v) for v in loadtest.percentiles([]).values())


def test_student_count_is_bounded():
    for bad in (0, loadtest.MAX_STUDENTS + 1):
        with pytest.raises(ValueError, match="students must be between"):
            loadtest.run(bad, [])


def test_hub_config_binds_loopback_only(tmp_path):
    text = loadtest.hub_config(tmp_path, port=1, hub_port=2, api_port=3, token="t", students=3, cache=tmp_path)
    urls = [line.split("=", 1)[1] for line in text.splitlines() if "url =" in line.lower() and "db_url" not in line]
    assert len(urls) == 3 and all("//127.0.0.1:" in url for url in urls)
    # the challenge service joins as a class's hub runs it, from the deploy configuration itself
    assert f"load_subconfig({str(loadtest.SERVICE_CONFIG)!r})" in text
    stand_ins = loadtest.hub_config(tmp_path, port=1, hub_port=2, api_port=3, token="t", students=3, cache=tmp_path,
                                    kernels=False)
    assert "load_subconfig" not in stand_ins
    env = loadtest.service_environment(tmp_path, tmp_path)
    assert env["LAB_CHALLENGES_STATE"].startswith(str(tmp_path)) and int(env["LAB_CHALLENGES_PORT"]) > 0


def test_the_06_8_step_runs_the_notebooks_own_attack():
    cell = loadtest.attack_06_8_cell()
    compile(cell, "06.8", "exec")
    notebook = "".join(loadtest.code_cells(loadtest.ATTACK_NOTEBOOK))
    start = cell.index("def recover_key(")
    body = cell[start:cell.index("_lt_batches = []")].rstrip()
    assert body in notebook, "the worked attack, as notebook 06b has it"
    assert '_lt_ex.check("06.8", lambda oracle: recover_key(_lt_timed(oracle)))' in cell
    assert cell.rstrip().endswith(f"print({loadtest.MARK_06_8!r} + _lt_json.dumps(_lt_batches))")


def test_service_report_pools_every_students_batches():
    runs = [loadtest.StudentRun(f"s{i}", ready_s=1.0, last_cell_s=9.0, batches=[(1, 0.1 * i), (256, 0.2), (120 + i, 0.3)])
            for i in range(1, 5)] + [loadtest.StudentRun("none", ready_s=1.0, last_cell_s=9.0)]
    peaks = loadtest.Peaks(service_cpu_s=4.0, service_rss=300.0, service_percent=80.0)
    got = loadtest.service_report(runs, peaks, wall=20.0)
    assert got["students_06_8"] == 4 and got["batches"] == 12
    assert got["rows_per_student"] == {"p50": 379.0, "p95": 381.0, "max": 381.0}  # 378..381, nearest rank
    assert got["batch_latency_ms"] == {"p50": 200.0, "p95": 400.0, "max": 400.0}
    assert (got["cpu_s"], got["mean_percent"], got["peak_rss_mb"]) == (4.0, 20.0, 300.0)


def _ours() -> set[int]:
    """Hub, proxy, server and kernel processes of this lab's load tests now running."""
    marks = ("jupyterhub_config.py", "jupyterhub-singleuser", "configurable-http-proxy", "labkit.challenges")
    found = set()
    for proc in psutil.process_iter(["pid", "cmdline", "cwd"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if any(mark in cmd for mark in marks) and "labkit-loadtest-" in (cmd + str(proc.info["cwd"] or "")):
            found.add(proc.info["pid"])
    return found


@pytest.mark.skipif(shutil.which("npm") is None and not loadtest.PROXY.exists(),
                    reason="configurable-http-proxy needs npm (Node.js) to install")
def test_three_students_through_a_real_hub(tmp_path):
    import nbformat

    before = _ours()
    notebook = tmp_path / "two_cells.ipynb"  # the cells are the kernels' path; the notebooks' own costs are make loadtest's
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("from labkit import bits"),
                                                   nbformat.v4.new_code_cell("print(bits.to_hex(b'lab'))")]),
                   notebook)
    out = tmp_path / "out"
    assert loadtest.main(["--students", "3", "--notebook", str(notebook), "--timeout", "240",
                          "--out", str(out)]) == 0
    report = json.loads((out / "loadtest.json").read_text())
    assert report["students"] == report["finished"] == 3 and not report["failures"] and not report["aborted"]
    for key in ("time_to_ready_s", "time_to_last_cell_s", "server_peak_rss_mb", "student_peak_rss_mb",
                "student_cpu_s"):
        stats = report[key]
        assert 0 < stats["p50"] <= stats["p95"] <= stats["max"], (key, stats)
    figures = report["notebooks"]["two_cells.ipynb"]
    assert figures["cells"] == 2 and 0 < figures["kernel_peak_rss_mb"]["p50"]
    service = report["challenge_service"]  # every student ran 06.8 through the hub's service, and solved it
    assert service["students_06_8"] == 3 and service["batches"] >= 9
    assert 257 <= service["rows_per_student"]["p50"] <= service["rows_per_student"]["max"] <= 512
    assert 0 < service["batch_latency_ms"]["p50"] <= service["batch_latency_ms"]["p95"]
    assert service["cpu_s"] > 0 and service["peak_rss_mb"] > 50
    assert report["time_to_ready_s"]["max"] < report["time_to_last_cell_s"]["max"]
    assert report["hub"]["cpu_s"] > 0 and report["machine"]["cpus"] >= 1
    assert "3 of 3 students finished" in (out / "loadtest.md").read_text()
    kept = list(out.glob("loadtest-*.json"))
    assert len(kept) == 1 and json.loads(kept[0].read_text()) == report, "every run is kept under its time"
    text = (out / "loadtest.md").read_text()
    assert "MiB" in text and " MB" not in text
    assert _ours() <= before, "the load test left processes running"
    assert not list(Path(loadtest.tempfile.gettempdir()).glob("labkit-loadtest-*")), "temporary folders left"


def _report(peak_mb: float, cpu_s: float) -> dict:
    stats = {"p50": 1.0, "p95": 1.0, "max": 1.0}
    return {"student_peak_rss_mb": dict(stats, p95=peak_mb), "student_cpu_s": dict(stats, p95=cpu_s),
            "notebooks": {"a.ipynb": {"kernel_peak_rss_mb": dict(stats, max=300.0), "time_s": dict(stats, p95=9.0)},
                          "b.ipynb": {"kernel_peak_rss_mb": dict(stats, max=500.0), "time_s": dict(stats, p95=5.0)}}}


def test_capacity_rounds_memory_up_and_names_the_binding_bound():
    need = capacity.guarantees(_report(peak_mb=700.0, cpu_s=60.0))
    assert need["memory_guarantee_mb"] == 768 and need["memory_limit_mb"] == 1536
    assert need["cpu_guarantee"] == 0.2  # 60 CPU-seconds within the 300 s budget
    node = capacity.per_node(8, need)  # 32 GiB * 0.9 - 1 GiB = 27.8 GiB = 28467 MiB -> 37 by memory
    assert (node["by_memory"], node["by_cpu"], node["students"], node["bound"]) == (37, 40, 37, "memory")
    cpu_heavy = capacity.per_node(8, capacity.guarantees(_report(peak_mb=700.0, cpu_s=120.0)))
    assert (cpu_heavy["by_cpu"], cpu_heavy["bound"]) == (20, "CPU")
    assert capacity.peak_chapter(_report(700.0, 60.0)) == ("b.ipynb", "a.ipynb")
    text = capacity.table(_report(700.0, 60.0))
    assert "| 8 cores | 32 GiB | 37 | 40 | **37** | memory |" in text and "A class of 300" in text


def test_capacity_sizes_the_challenge_service_from_its_measured_cpu():
    report = dict(_report(700.0, 60.0), students=20, challenge_service={
        "batches": 60, "rows_per_student": {"p50": 385.0}, "cpu_s": 10.0, "peak_rss_mb": 400.0,
        "batch_latency_ms": {"p50": 150.0, "p95": 900.0, "max": 1200.0}})
    text = capacity.table(report)
    assert "| latency, 20 students at once | 150 ms | 900 ms | 1200 ms |" in text
    assert "0.50 each" in text and "150 CPU-seconds for 300, 0.50 core within 300 s" in text
    assert capacity.service_lines(_report(700.0, 60.0)) == [], "reports from before the service ran as a hub service"


def test_the_kubernetes_values_carry_the_measured_guarantees():
    """deploy/z2jh/config.yaml's memory and CPU per student are the ones the committed load test gives."""
    import yaml

    results = ROOT / "deploy" / "results" / "loadtest.json"
    need = capacity.guarantees(json.loads(results.read_text()))
    values = yaml.safe_load((ROOT / "deploy" / "z2jh" / "config.yaml").read_text())["singleuser"]
    assert values["memory"]["guarantee"] == f"{need['memory_guarantee_mb']}M"
    assert values["memory"]["limit"] == f"{need['memory_limit_mb']}M"
    assert values["cpu"]["guarantee"] == need["cpu_guarantee"]


def test_a_failing_request_is_named():
    import asyncio
    from types import SimpleNamespace

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed once the block ends: nothing listens there
    hub = SimpleNamespace(url=f"http://127.0.0.1:{port}", token="t")
    with pytest.raises(loadtest.RequestFailed, match=r"^POST /hub/api/users/student007/server failed after"):
        asyncio.run(loadtest.Hub.request(hub, "POST", "/hub/api/users/student007/server?x=1", timeout=5))


def test_a_kernel_websocket_that_times_out_is_opened_again_and_counted(monkeypatch):
    """As JupyterLab reconnects: a timeout is retried (and counted), a third one fails the student
    naming the try, and any other error fails at once."""
    import asyncio

    outcomes = []

    async def fake_connect(request, **_):
        error = outcomes.pop(0)
        if error:
            raise error
        return "socket"

    monkeypatch.setattr(loadtest, "websocket_connect", fake_connect)
    run = loadtest.StudentRun("student001")
    outcomes[:] = [loadtest.HTTPTimeoutError("Timeout during request")] * 2 + [None]
    assert asyncio.run(loadtest.connect_kernel(run, "ws://127.0.0.1:1/k", "t", "/k")) == "socket"
    assert run.reconnects == 2
    outcomes[:] = [loadtest.HTTPTimeoutError("Timeout during request")] * 3
    with pytest.raises(loadtest.RequestFailed, match=r"websocket /k: HTTPTimeoutError.*try 3 of 3"):
        asyncio.run(loadtest.connect_kernel(run, "ws://127.0.0.1:1/k", "t", "/k"))
    outcomes[:] = [ConnectionRefusedError("refused"), None]
    with pytest.raises(loadtest.RequestFailed, match=r"ConnectionRefusedError.*try 1 of 3"):
        asyncio.run(loadtest.connect_kernel(run, "ws://127.0.0.1:1/k", "t", "/k"))
    assert run.reconnects == 4
    rep = {"websocket_reconnects": {"student001": 4}}
    assert "opened again after a 60 s timeout (as JupyterLab reconnects): 4, for student001" in \
        loadtest.markdown({**json.loads((ROOT / "deploy" / "results" / "loadtest.json").read_text()), **rep})


def test_an_incomplete_run_is_kept_beside_the_committed_results(tmp_path, monkeypatch):
    (tmp_path / "loadtest.json").write_text("{}\n")
    incomplete = {"command": "make loadtest N=2", "date": "2026-12-05 09:00 UTC", "students": 2, "finished": 1,
                  "failures": {"student002": "RequestFailed: POST /hub/api/users/student002/server failed after 60.0 s"},
                  "aborted": "", "notebooks": {}, "machine": {"cpus": 2, "memory_gb": 1.0,
                                                               "load_average_before": [0, 0, 0],
                                                               "load_average_after": [0, 0, 0]},
                  "time_to_ready_s": loadtest.percentiles([1.0]), "time_to_last_cell_s": loadtest.percentiles([2.0]),
                  "server_peak_rss_mb": loadtest.percentiles([100.0]), "student_peak_rss_mb": loadtest.percentiles([100.0]),
                  "student_cpu_s": loadtest.percentiles([1.0]), "all_processes_peak_rss_mb": 200.0,
                  "hub": {"cpu_s": 1.0, "mean_percent": 1.0, "peak_percent": 5.0, "peak_rss_mb": 90.0},
                  "proxy_peak_percent": 1.0, "proxy_peak_rss_mb": 50.0, "wall_s": 3.0}
    monkeypatch.setattr(loadtest, "run", lambda *args, **kwargs: dict(incomplete))
    assert loadtest.main(["--students", "2", "--out", str(tmp_path)]) == 1
    assert (tmp_path / "loadtest.json").read_text() == "{}\n", "an incomplete run must not replace the results"
    kept = list(tmp_path.glob("loadtest-*.md"))
    assert len(kept) == 1 and "POST /hub/api/users/student002/server failed" in kept[0].read_text()


@pytest.mark.skipif(shutil.which("npm") is None and not loadtest.PROXY.exists(),
                    reason="configurable-http-proxy needs npm (Node.js) to install")
def test_hub_only_mode_puts_students_in_front_of_the_hub_without_kernels(tmp_path):
    assert loadtest.main(["--students", "4", "--no-kernels", "--duration", "4", "--timeout", "120",
                          "--out", str(tmp_path)]) == 0
    (kept,) = tmp_path.glob("hubonly-*.json")
    report = json.loads(kept.read_text())
    assert report["finished"] == 4 and report["mode"].startswith("hub only") and report["notebooks"] == {}
    assert 0 < report["server_peak_rss_mb"]["max"] < 100, "stand-in servers, not jupyterhub-singleuser"
    assert report["hub"]["peak_rss_mb"] > 0 and report["hub"]["cpu_s"] > 0
    assert not (tmp_path / "loadtest.json").exists(), "hub-only runs never feed the capacity table"


# -- the sampler's memory figures: RSS, PSS and USS of live processes ---------------------------------
_SHARING = """
import os, sys, time
shared = b"\\x01" * (64 << 20)  # 64 MiB written once, then shared copy-on-write by the fork below
ready, done = os.pipe()
child = os.fork()
if child == 0:
    if len(sys.argv) > 1:  # the kernel stand-in: a private allocation of its own
        mine = b"\\x02" * (32 << 20)
    os.write(done, b"!")
    time.sleep(60)
    os._exit(0)
os.read(ready, 1)  # the child holds what it will hold
print(child, flush=True)
time.sleep(60)
"""


@pytest.fixture
def forked_pair():
    """A process and its fork sharing 64 MiB of written pages (the child also holds 32 MiB of its
    own when ``argv`` asks); both end with the test."""
    import subprocess

    started = []

    def start(*argv: str, env: dict | None = None) -> tuple[psutil.Process, psutil.Process]:
        parent = subprocess.Popen([sys.executable, "-c", _SHARING, *argv], stdout=subprocess.PIPE, text=True,
                                  env=env)
        started.append(parent)
        child = psutil.Process(int(parent.stdout.readline()))
        return psutil.Process(parent.pid), child

    yield start
    for parent in started:
        for proc in psutil.Process(parent.pid).children() if parent.poll() is None else []:
            proc.kill()
        parent.kill()
        parent.wait()


def test_memory_of_tells_shared_pages_from_private_ones(forked_pair):
    parent, child = forked_pair()
    for proc in (parent, child):
        got = loadtest.memory_of(proc.pid)
        assert got.rss >= 64 and got.rss >= got.pss >= got.uss > 0, got
        # the 64 MiB both map count in full in RSS, half in each one's PSS, not at all in USS
        assert got.rss - got.uss >= 60 and got.rss - got.pss >= 28, got
        full = proc.memory_full_info()  # psutil parses the whole smaps: the same sums, read more slowly
        assert abs(full.rss / 2**20 - got.rss) < 4 and abs(full.uss / 2**20 - got.uss) < 4, (full, got)
    child.kill()  # its parent does not reap it: a zombie, whose memory is gone
    for _ in range(100):
        if child.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(0.05)
    with pytest.raises(psutil.NoSuchProcess):
        loadtest.memory_of(child.pid)
    parent.kill()
    with pytest.raises(psutil.NoSuchProcess):
        parent.wait(5)
        loadtest.memory_of(parent.pid)


def test_the_sampler_reports_pss_and_uss_beside_rss(forked_pair, tmp_path):
    """A stand-in server (JUPYTERHUB_USER set) with a stand-in kernel as its child, sampled as the
    load test samples a hub's processes; the report keeps the old RSS keys and adds PSS and USS."""
    from types import SimpleNamespace
    import os

    import subprocess

    server = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "jupyterhub-singleuser"],
                              env=dict(os.environ, JUPYTERHUB_USER="student001"))
    try:
        # the kernel stand-in: a child of the server by the sampler's reading of parents
        parent, kernel = forked_pair("ipykernel_launcher", "-f", str(tmp_path / "kernel-k1.json"))
        processes = [psutil.Process(server.pid), kernel]
        hub = SimpleNamespace(process=SimpleNamespace(pid=os.getpid()), descendants=lambda: processes,
                              kill_descendants=lambda: None)
        sampler = loadtest.Sampler(hub)
        sampler.owner[kernel.ppid()] = "student001"  # the kernel's parent stands in for its server
        sampler.sample({})
        peaks = sampler.peaks
        server_memory = loadtest.memory_of(server.pid)
    finally:
        server.kill()
        server.wait()
    k = peaks.kernel["k1"]
    assert k.rss >= 96 and k.rss >= k.pss >= k.uss >= 30, k
    assert k.rss - k.pss >= 28, "the 64 MiB shared with its parent count half in PSS"
    student = peaks.student["student001"]
    assert student.rss == pytest.approx(k.rss + peaks.server["student001"].rss)
    assert abs(student.rss - k.rss - server_memory.rss) < 4
    assert peaks.total_pss == pytest.approx(k.pss + peaks.server["student001"].pss) and peaks.total_pss < peaks.total_rss
    run = loadtest.StudentRun("student001", ready_s=1.0, last_cell_s=2.0, notebook_s={"a.ipynb": 1.0},
                              kernels={"a.ipynb": "k1"})
    rep = loadtest.report([run], peaks, {"a.ipynb": ["pass"]}, hub_cpu=0.1, wall=2.0, command="test",
                          load=((0, 0, 0), (0, 0, 0)))
    figures = rep["notebooks"]["a.ipynb"]
    assert figures["kernel_peak_rss_mb"]["max"] == round(k.rss, 2) and figures["kernel_peak_pss_mb"]["max"] == round(k.pss, 2)
    assert rep["student_peak_uss_mb"]["p95"] <= rep["student_peak_pss_mb"]["p95"] <= rep["student_peak_rss_mb"]["p95"]
    text = loadtest.markdown(rep)
    assert "`a.ipynb` kernel, peak PSS" in text and "peak PSS (the node's share)" in text and "MiB peak PSS" in text


def test_capacity_packs_nodes_by_pss_and_limits_pods_by_rss():
    stats = {"p50": 1.0, "p95": 1.0, "max": 1.0}
    report = dict(_report(peak_mb=700.0, cpu_s=60.0), student_peak_pss_mb=dict(stats, p95=500.0))
    need = capacity.guarantees(report)
    assert (need["memory_guarantee_mb"], need["memory_limit_mb"], need["basis"]) == (512, 1536, "PSS")
    assert capacity.per_node(8, need)["by_memory"] == 55  # 28467 MiB // 512
    assert "peak memory 500 MiB PSS (p95 of server + kernels; RSS 700 MiB)" in capacity.table(report)
    for missing in ({}, {"student_peak_pss_mb": dict(stats, p95=math.nan)}):  # older runs, or no sample
        old = capacity.guarantees(dict(_report(peak_mb=700.0, cpu_s=60.0), **missing))
        assert (old["memory_guarantee_mb"], old["memory_limit_mb"], old["basis"]) == (768, 1536, "RSS")
    for nb, pss in (("a.ipynb", 400.0), ("b.ipynb", 200.0)):  # b peaks in RSS, a in PSS
        report["notebooks"][nb]["kernel_peak_pss_mb"] = dict(stats, max=pss)
    assert capacity.peak_chapter(report)[0] == "a.ipynb"
