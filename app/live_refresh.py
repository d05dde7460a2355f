"""The live refresh of the Runs, Run dashboard and Sweeps pages: a fragment reruns while its browser tab is visible.

``st.fragment(run_every=...)`` asks the server for a rerun on a browser timer whether or not anyone can see the tab;
a background tab kept its dashboard rebuilt every 2 s for nobody (issue 20: hidden tabs cost nothing). Here a tiny
``st.components.v2`` component in the fragment sends a trigger every ``every_s`` seconds only while
``document.visibilityState`` is ``visible``, and one at once when the tab is shown again after at least that long
(the page is current the moment it is looked at). A trigger reruns the fragment that holds the component, as a
widget in a fragment does, never the whole page.

Trusted code: the JavaScript below is this file's constant; nothing from a user or a run reaches it.
"""

from __future__ import annotations

import streamlit as st

# The component's one JavaScript function runs in the page (v2 components are not iframes). It is called again when
# the fragment reruns: the previous timer is stopped first (kept on the host element), and Streamlit calls the
# returned cleanup when the component leaves the page. ``window.__wbLiveTicks`` counts the triggers sent (tests and
# benchmarks/bench_ui.py read it).
_JS = """
export default function ({ data, parentElement, setTriggerValue }) {
  const host = parentElement.host || parentElement;
  if (host.__wbStop) host.__wbStop();
  const every = data.every_ms;
  let last = Date.now();
  const visible = () => document.visibilityState === "visible";
  const tick = () => {
    last = Date.now();
    window.__wbLiveTicks = (window.__wbLiveTicks || 0) + 1;
    setTriggerValue("tick", last);
  };
  const timer = setInterval(() => { if (visible()) tick(); }, every);
  const onShow = () => { if (visible() && Date.now() - last >= every) tick(); };
  document.addEventListener("visibilitychange", onShow);
  host.__wbStop = () => {
    clearInterval(timer);
    document.removeEventListener("visibilitychange", onShow);
    host.__wbStop = null;
  };
  return host.__wbStop;
}
"""
_TICKER = st.components.v2.component("workbench_live_refresh", js=_JS)


def _ticked() -> None:
    """The trigger's callback: nothing to do, the fragment's rerun is the point (registering it makes the trigger
    rerun the fragment)."""


def live_refresh(every_s: float | None, key: str) -> None:
    """Call inside an ``st.fragment``: rerun that fragment every ``every_s`` seconds while the tab is visible.

    ``None`` mounts nothing (a finished run's page does not refresh). ``key`` must be unique on the page."""
    if every_s is None:
        return
    _TICKER(key=key, data={"every_ms": int(every_s * 1000)}, on_tick_change=_ticked, height=0)
