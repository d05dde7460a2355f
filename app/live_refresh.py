"""The live refresh of the Runs, Run dashboard and Sweeps pages: a fragment reruns while its browser tab is visible.

``st.fragment(run_every=...)`` asks the server for a rerun on a browser timer whether or not anyone can see the tab,
and whether or not the last rerun has finished: a background tab kept its dashboard rebuilt every 2 s for nobody
(issue 20: hidden tabs cost nothing), and a server slower than the timer was asked again before it was done. Here a
tiny ``st.components.v2`` component, drawn last in the fragment, asks for one rerun ``every_s`` seconds after the
fragment was drawn, only while ``document.visibilityState`` is ``visible``; a tab hidden when its rerun fell due asks
at once when it is shown again (the page is current the moment it is looked at). The trigger reruns the fragment that
holds the component, as a widget in a fragment does, never the whole page. A rerun that never comes back (a lost
trigger) is asked for again after five periods.

Trusted code: the JavaScript below is this file's constant; nothing from a user or a run reaches it.
"""

from __future__ import annotations

import streamlit as st

# The component's one JavaScript function runs in the page (v2 components are not iframes). It is called again each
# time the fragment is drawn (``data`` carries the draw's number): the previous timers are stopped first (kept on the
# host element), and Streamlit calls the returned cleanup when the component leaves the page.
# ``window.__wbLiveTicks`` counts the triggers sent (tests/test_browser_live_refresh.py reads it).
_JS = """
export default function ({ data, parentElement, setTriggerValue }) {
  const host = parentElement.host || parentElement;
  if (host.__wbStop) host.__wbStop();
  const every = data.every_ms;
  let due = false, retry = null;
  const visible = () => document.visibilityState === "visible";
  const tick = () => {
    due = false;
    window.__wbLiveTicks = (window.__wbLiveTicks || 0) + 1;
    setTriggerValue("tick", Date.now());
    retry = setTimeout(tick, 5 * every);  // no rerun came back (a lost trigger): ask again
  };
  const timer = setTimeout(() => { if (visible()) tick(); else due = true; }, every);
  const onShow = () => { if (due && visible()) tick(); };
  document.addEventListener("visibilitychange", onShow);
  host.__wbStop = () => {
    clearTimeout(timer);
    clearTimeout(retry);
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
    """Call as the last thing an ``st.fragment`` draws: rerun that fragment ``every_s`` seconds after this draw, while
    the tab is visible.

    ``None`` mounts nothing (a finished run's page does not refresh). ``key`` must be unique on the page."""
    if every_s is None:
        return
    drawn = st.session_state.get(f"_{key}_draws", 0) + 1  # a new value each draw: the component's function runs again
    st.session_state[f"_{key}_draws"] = drawn
    _TICKER(key=key, data={"every_ms": int(every_s * 1000), "draw": drawn}, on_tick_change=_ticked, height=0)
