# ---- memory of the single-user server (issue 27, item 4: peak memory per student) ----------------
# glibc keeps the memory of the large messages a server relays (a kernel's outputs, a saved
# notebook) in its heaps: a server grew from 112 to 172 MiB RSS over notebook 02 run twice, and
# malloc_trim gave 46 MiB of it back. labkit.memory.tune_server_heap() fixes the allocator's
# thresholds in this process only (its kernels keep glibc's defaults): 123 MiB after the same run.
# The servers run the lab's image, so labkit is importable; a server without it keeps the defaults.
try:
    from labkit import memory as _labkit_memory
except ImportError:
    pass
else:
    _labkit_memory.tune_server_heap()
# ---- end of the server memory block ----------------------------------------------------------------
