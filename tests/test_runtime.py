"""The exporter's own process_*/python_* families: collected at most once per TTL."""

from __future__ import annotations

from exporter.runtime import RuntimeMetrics


def test_families_are_collected_once_per_ttl_and_served_as_the_same_tuple() -> None:
    now = [100.0]
    runtime = RuntimeMetrics(ttl=1.0, clock=lambda: now[0])
    first = runtime.families()
    assert {"process_open_fds", "python_info"} <= {f.name for f in first}
    now[0] += 0.9
    assert runtime.families() is first  # the renderer then reuses its encoding too
    assert runtime.section()[0] is first
    now[0] += 0.2
    assert runtime.families() is not first


def test_collect_is_what_a_registry_sees() -> None:
    runtime = RuntimeMetrics()
    assert list(runtime.collect()) == list(runtime.families())
